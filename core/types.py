"""Shared record types: what the tutors, the progress store and the LLM client exchange.

In the bottom package so the stores (``infra``) and the action server (``actions``) share
them without either importing the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional


@dataclass
class Progress:
    """One learner's record for one module (persisted by ``infra.progress_store``)."""

    attempts: int = 0
    correct: int = 0
    level: int = 1
    points: int = 0
    streak: int = 0  # consecutive correct answers
    misses: int = 0  # consecutive wrong answers
    seen: List[str] = field(default_factory=list)  # item ids already used
    last_seen: Optional[datetime] = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.attempts if self.attempts else 0.0


@dataclass
class LLMTask:
    """An optional request to make one offline message richer with the LLM.

    ``messages[replace_index]`` is the offline text; it stays when the LLM is off,
    fails, times out or answers badly.
    """

    module: str  # selects the system prompt file: actions/content/prompts/<module>.txt
    task: str  # what to do, e.g. "explain_mistake", "counter_argument"
    variables: Dict[str, Any]  # data only; never names or phone numbers
    replace_index: int

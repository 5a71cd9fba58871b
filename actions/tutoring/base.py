"""The contract every tutoring module implements.

Tutors are plain, synchronous and free of Rasa: they take the learner's text, the
language (``"en"``/``"rw"``), the learner's stored progress for that module and the
module's conversation state, and return what to say plus the updated progress and
state. The Rasa actions (``actions/module_actions.py``) load/save progress, keep ``state``
in the ``tutor_state`` slot, and optionally let the LLM enrich one message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from core.types import LLMTask, Progress  # noqa: F401 (the tutors' contract uses them)


@dataclass
class Reply:
    messages: List[str]
    state: Dict[str, Any]  # JSON-serialisable; kept in the ``tutor_state`` slot
    progress: Progress
    outcome: Optional[bool] = None  # True correct, False wrong, None not graded
    llm_task: Optional[LLMTask] = None


class Tutor:
    """Interface; subclasses live in actions/tutoring/<module>.py."""

    name: str = ""

    def start(self, lang: str, progress: Progress, state: Optional[Dict[str, Any]] = None) -> Reply:
        """Introduce the module and present the first item."""
        raise NotImplementedError

    def prompt(self, lang: str, state: Dict[str, Any]) -> str:
        """The current question/instruction again (used by repeat and after interruptions)."""
        raise NotImplementedError

    def answer(self, text: str, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        """Grade the learner's turn, give feedback, move on to the next item."""
        raise NotImplementedError

    def hint(self, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        """Help with the current item without giving a new one."""
        raise NotImplementedError

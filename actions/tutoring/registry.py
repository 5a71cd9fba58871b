"""Module name -> tutor instance (one per process; tutors keep no per-learner state)."""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, Text

from actions.tutoring.base import Tutor
from core.form_ask import MODULES  # one list, also read by Rasa (infra/rasa_patches.py)

INTENT_TO_MODULE = {f"start_{m}": m for m in MODULES}


@lru_cache(maxsize=1)
def tutors() -> Dict[Text, Tutor]:
    from actions.tutoring.debate import DebateTutor
    from actions.tutoring.english import EnglishTutor
    from actions.tutoring.math import MathTutor
    from actions.tutoring.reading import ReadingTutor

    return {"math": MathTutor(), "english": EnglishTutor(), "reading": ReadingTutor(), "debate": DebateTutor()}


def get_tutor(module: Text) -> Tutor:
    return tutors()[module]

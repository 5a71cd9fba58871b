"""The tutor form's ask (``action_ask_answer``) when it has nothing to say: one decision, run
by the action server's action (actions/module_actions.py) and, in Rasa processes started by
the launcher, by Rasa itself without the round trip to the action server
(``infra/rasa_patches.py``, speed-up ``askskip``) -- the same events either way.

Almost every form turn ends with the ask right after ``validate_tutor_form`` graded the
answer and already presented the next question (marked :data:`ASKED` in ``tutor_state``):
the ask then only clears the mark. When the mark is absent (after a hint, "repeat", an
off-topic nudge), the ask must say the question: only the action server knows the tutors.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

ACTION = "action_ask_answer"  # the form's ask action in domain.yml
MODULES = ("math", "english", "reading", "debate")  # the tutoring modules (actions/tutoring/registry.py)

# Set in tutor_state when a reply already presented the current question, so the form's
# ask action does not say it twice; cleared by the ask action (and the next turn).
ASKED = "_asked"


def silent_ask(active_module: Any, tutor_state: Any) -> Optional[Dict[Text, Any]]:
    """The ``tutor_state`` to set when the ask says nothing (the question was just
    presented), else ``None``: the ask has to speak (or show the menu)."""
    if active_module not in MODULES or not isinstance(tutor_state, dict) or not tutor_state.get(ASKED):
        return None
    return {k: v for k, v in tutor_state.items() if k != ASKED}

"""The weekly SMS to a guardian: what the learner practised this week, how it went, a word of
encouragement -- in the guardian's language, GSM-7, one segment where the name allows.

Progress records (``infra.progress_store``) are running totals per module; the week is the
difference from the totals at the previous report, which the report job keeps
(``Job.extra["totals"]``: numbers of answers only, nothing else about the learner).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Tuple

from core import gsm, texts

MODULES = ("math", "english", "reading", "debate")
GOOD_ACCURACY = 0.6


def totals_of(summary: Dict[Text, Any]) -> Dict[Text, List[int]]:
    """``{module: [attempts, correct]}`` of a progress summary (``ProgressStore.summary``)."""
    return {m: [int(p.attempts), int(p.correct)] for m, p in summary.items()}


def week_of(now: Dict[Text, List[int]], before: Dict[Text, List[int]]) -> Dict[Text, Tuple[int, int]]:
    """Answers and right answers per module since ``before``; modules not practised left out."""
    week = {}
    for module, (attempts, correct) in now.items():
        old_attempts, old_correct = (before.get(module) or [0, 0])[:2]
        if attempts > old_attempts:
            week[module] = (attempts - old_attempts, max(0, correct - old_correct))
    return week


def _modules_text(modules: List[Text], language: Optional[Text]) -> Text:
    names = [texts.text(f"outreach.module_{m}", language) for m in MODULES if m in modules]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {texts.text('outreach.word_and', language)} {names[-1]}"


def report_text(name: Optional[Text], week: Dict[Text, Tuple[int, int]], language: Optional[Text]) -> Text:
    """The report itself (GSM-7)."""
    name = (name or "").strip() or texts.text("outreach.guardian_learner", language)
    if not week:
        return gsm.sanitize(texts.text("outreach.guardian_report_idle", language, name=name))
    attempts = sum(a for a, _ in week.values())
    correct = sum(c for _, c in week.values())
    cheer = "good" if attempts and correct / attempts >= GOOD_ACCURACY else "try"
    return gsm.sanitize(texts.text(
        "outreach.guardian_report", language, name=name, modules=_modules_text(list(week), language),
        correct=correct, attempts=attempts, cheer=texts.text(f"outreach.guardian_cheer_{cheer}", language)))


async def compose(progress: Any, learner_id: Text, language: Optional[Text],
                  before: Dict[Text, List[int]]) -> Tuple[Text, Dict[Text, List[int]]]:
    """The report for ``learner_id`` and the totals the next report starts from."""
    now = totals_of(await progress.summary(learner_id))
    profile = await progress.load_profile(learner_id)
    return report_text(getattr(profile, "name", None), week_of(now, before), language), now

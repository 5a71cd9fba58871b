"""What a queued progress/profile write is, and what it does to a learner's record.

The progress store (``infra/progress_store.py``) queues every write in a local spool
(``infra/spool.py``) and applies it to the database later, so the same rules are used in
two places: when a write is applied to the database row, and when a read shows the
database (or last known) state with the still-queued writes laid over it. One function,
:func:`apply_write`, serves both, so what a learner is told is what will be stored.

A progress write carries the state the tutor started from (``base``) and the state it
computed (``state``). Applied to a row equal to ``base`` (the usual case) it stores
``state``. Applied to a row that differs -- the process restarted during an outage and
handed out fresh progress, or another process wrote in between -- it adds the write's
*change* (answers, correct answers, points, level, items seen) to the row instead of
replacing it, so neither the row's earlier progress nor the write's is lost. Without
``base`` (a save that did not follow a load) the state replaces the row, as a plain
upsert would.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from core.types import Progress

PROGRESS = "progress"
PROFILE = "profile"
FORGET = "forget"
COUNTERS = ("attempts", "correct", "points")


@dataclass
class LearnerProfile:
    learner_id: str
    name: Optional[str] = None
    language: Optional[str] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None


@dataclass
class LearnerView:
    """What is known about one learner: progress per module and the profile.

    ``complete``: every module is known (a summary was read), not only the ones loaded.
    ``profile_known``: ``profile`` is the real answer (``None`` = no profile yet)."""

    modules: Dict[str, Progress] = field(default_factory=dict)
    complete: bool = False
    profile: Optional[LearnerProfile] = None
    profile_known: bool = False

    def copy(self) -> "LearnerView":
        return LearnerView(
            {m: copy_progress(p) for m, p in self.modules.items()}, self.complete,
            replace(self.profile) if self.profile else None, self.profile_known,
        )


# --------------------------------------------------------------------------- encoding
def progress_to_dict(progress: Progress) -> Dict[str, Any]:
    last_seen = progress.last_seen
    if last_seen is not None:
        if not isinstance(last_seen, datetime):
            raise ValueError("progress.last_seen must be a datetime or None")
        last_seen = as_utc(last_seen).isoformat()
    try:
        return {
            "attempts": int(progress.attempts), "correct": int(progress.correct),
            "level": int(progress.level), "points": int(progress.points),
            "streak": int(progress.streak), "misses": int(progress.misses),
            "seen": [str(s) for s in (progress.seen or [])], "last_seen": last_seen,
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid progress: {type(exc).__name__}") from exc


def progress_from_dict(data: Dict[str, Any]) -> Progress:
    last_seen = data.get("last_seen")
    return Progress(
        attempts=int(data["attempts"]), correct=int(data["correct"]), level=int(data["level"]),
        points=int(data["points"]), streak=int(data["streak"]), misses=int(data["misses"]),
        seen=[str(s) for s in data.get("seen") or []],
        last_seen=datetime.fromisoformat(last_seen) if last_seen else None,
    )


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def copy_progress(progress: Progress) -> Progress:
    return replace(progress, seen=list(progress.seen or []))


def progress_write(module: str, base: Optional[Progress], state: Progress, at: datetime) -> Dict[str, Any]:
    return {"kind": PROGRESS, "module": module, "at": at.isoformat(),
            "base": progress_to_dict(base) if base is not None else None, "state": progress_to_dict(state)}


def profile_write(name: Optional[str], language: Optional[str], at: datetime) -> Dict[str, Any]:
    return {"kind": PROFILE, "name": name, "language": language, "at": at.isoformat()}


def forget_write(at: datetime) -> Dict[str, Any]:
    return {"kind": FORGET, "at": at.isoformat()}


def encode(write: Dict[str, Any]) -> str:
    return json.dumps(write, ensure_ascii=False, separators=(",", ":"))


def decode(data: str) -> Dict[str, Any]:
    """The write, checked; ``ValueError`` for a row that can never be applied."""
    try:
        write = json.loads(data)
        write["at"] = as_utc(datetime.fromisoformat(write["at"]))
        if write["kind"] == PROGRESS:
            write["state"] = progress_from_dict(write["state"])
            write["base"] = progress_from_dict(write["base"]) if write.get("base") else None
        elif write["kind"] not in (PROFILE, FORGET):
            raise ValueError(f"unknown write kind {write['kind']!r}")
        return write
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable queued write: {type(exc).__name__}") from exc


# --------------------------------------------------------------------------- rules
def merge(current: Optional[Progress], base: Optional[Progress], state: Progress) -> Progress:
    """The row after a progress write (see the module documentation)."""
    current = current or Progress()
    if base is None or progress_to_dict(base) == progress_to_dict(current):
        return copy_progress(state)
    merged = copy_progress(current)
    for name in COUNTERS:
        setattr(merged, name, max(0, getattr(current, name) + getattr(state, name) - getattr(base, name)))
    merged.level = max(1, current.level + state.level - base.level)  # tutors clamp to their range
    merged.streak, merged.misses = state.streak, state.misses  # the latest answers decide
    added = [s for s in state.seen if s not in base.seen]
    dropped = set(base.seen) - set(state.seen)
    merged.seen = [s for s in current.seen if s not in dropped] + [s for s in added if s not in current.seen]
    stamps = [t for t in (current.last_seen, state.last_seen) if t is not None]
    merged.last_seen = max(stamps, key=as_utc) if stamps else None
    return merged


def apply_profile(profile: Optional[LearnerProfile], learner_id: str, write: Dict[str, Any]) -> LearnerProfile:
    at = write["at"]
    profile = replace(profile) if profile else LearnerProfile(learner_id, created_at=at)
    if write.get("name") is not None:
        profile.name = write["name"]
    if write.get("language") is not None:
        profile.language = write["language"]
    profile.updated_at = at
    return profile


def apply_write(view: LearnerView, learner_id: str, write: Dict[str, Any]) -> LearnerView:
    """``view`` with one decoded write applied (in place; returned for convenience)."""
    if write["kind"] == PROGRESS:
        module = write["module"]
        current = view.modules.get(module)
        if current is None and not view.complete:
            # Not known here (e.g. restarted while the database is down): show what the
            # writer started from; the database row decides when the write is applied.
            current = write["base"]
        view.modules[module] = merge(current, write["base"], write["state"])
    elif write["kind"] == PROFILE:
        view.profile = apply_profile(view.profile, learner_id, write)
        view.profile_known = True
    else:  # FORGET: nothing is known any more, and that is the complete truth
        view.modules, view.complete, view.profile, view.profile_known = {}, True, None, True
    return view


def overlay(view: LearnerView, learner_id: str, writes: List[Dict[str, Any]]) -> LearnerView:
    for write in writes:
        apply_write(view, learner_id, write)
    return view

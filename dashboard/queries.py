"""What each page shows, read through the read-only connection (dashboard/db.py).

Every query is bounded (a class's members, one learner's events, the overview's last
``DASHBOARD_DAYS`` days up to ``MAX_EVENTS`` events) and uses an index (class_members on
class_code and learner_id, learner_progress/learner_profile on learner_id, events on
sender_id and on the event time). Learners appear by their name if they gave one, else a
pseudonym derived from their id -- never a phone number or the id itself.
"""
from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from infra.progress_store import class_members, classes, learner_profile, learner_progress
from actions.answer_check import is_right
from dashboard.accounts import User
from infra import analytics

Table = Tuple[List[str], List[list]]
MAX_MEMBERS = 500
MAX_EVENTS = 200_000
MAX_LEARNER_EVENTS = 5_000
OVERVIEW_CACHE_SECONDS = 60
WEEK = timedelta(days=7)


@lru_cache(maxsize=1)
def _words() -> Dict[str, List[str]]:
    return yaml.safe_load((Path(__file__).parent / "pseudonyms.yml").read_text(encoding="utf-8"))


def pseudonym(learner_id: str) -> str:
    """"brave-zebra-42": stable for a learner, says nothing about them."""
    digest = hashlib.sha256(("bakame-pseudonym:" + learner_id).encode()).digest()
    words = _words()
    adjective = words["adjectives"][digest[0] % len(words["adjectives"])]
    animal = words["animals"][digest[1] % len(words["animals"])]
    return f"{adjective}-{animal}-{int.from_bytes(digest[2:4], 'big') % 100}"


def display_name(learner_id: str, name: Optional[str]) -> str:
    return name.strip() if name and name.strip() else pseudonym(learner_id)




def to_csv(table: Table) -> str:
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else analytics.scrub(cell) for cell in row])
    return out.getvalue()


@dataclass
class Overview:
    tables: Dict[str, Table] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)  # what could not be shown, and why
    since: Optional[date] = None


class Queries:
    def __init__(self, read: Engine, days: int = 30) -> None:
        self.read = read
        self.days = days
        self._overview: Optional[Tuple[float, Overview]] = None

    # ------------------------------------------------------------------ rights
    def can_see_class(self, user: User, code: str) -> bool:
        if user.role == "viewer":
            return False
        with self.read.connect() as conn:
            row = conn.execute(sa.select(classes.c.teacher).where(classes.c.code == code)).first()
        return row is not None and (user.is_admin or row.teacher == user.username)

    def can_see_learner(self, user: User, learner_id: str) -> bool:
        if user.is_admin:
            return True
        if user.role != "teacher":
            return False
        query = (sa.select(class_members.c.learner_id)
                 .join(classes, classes.c.code == class_members.c.class_code)
                 .where(class_members.c.learner_id == learner_id, classes.c.teacher == user.username).limit(1))
        with self.read.connect() as conn:
            return conn.execute(query).first() is not None

    # ------------------------------------------------------------------ classes
    def classes_for(self, user: User) -> Table:
        count = (sa.select(class_members.c.class_code, sa.func.count().label("learners"))
                 .group_by(class_members.c.class_code).subquery())
        query = (sa.select(classes.c.code, classes.c.name, classes.c.teacher, sa.func.coalesce(count.c.learners, 0))
                 .outerjoin(count, count.c.class_code == classes.c.code).order_by(classes.c.name))
        if not user.is_admin:
            query = query.where(classes.c.teacher == user.username)
        with self.read.connect() as conn:
            rows = [list(r) for r in conn.execute(query.limit(1000))]
        return ["code", "name", "teacher", "learners"], rows

    def class_name(self, code: str) -> str:
        with self.read.connect() as conn:
            row = conn.execute(sa.select(classes.c.name).where(classes.c.code == code)).first()
        return row.name if row is not None else code

    def roster(self, code: str, now: Optional[datetime] = None) -> Tuple[Table, List[str]]:
        """One row per learner of the class, and the learner ids in the same order (links)."""
        now = now or datetime.now(timezone.utc)
        with self.read.connect() as conn:
            members = conn.execute(sa.select(class_members.c.learner_id, class_members.c.joined_at)
                                   .where(class_members.c.class_code == code)
                                   .order_by(class_members.c.joined_at).limit(MAX_MEMBERS)).fetchall()
            ids = [m.learner_id for m in members]
            progress = conn.execute(sa.select(learner_progress).where(learner_progress.c.learner_id.in_(ids))).fetchall() if ids else []
            profiles = {p.learner_id: p for p in conn.execute(
                sa.select(learner_profile).where(learner_profile.c.learner_id.in_(ids)))} if ids else {}
        per_learner: Dict[str, List[Any]] = {i: [] for i in ids}
        for row in progress:
            per_learner[row.learner_id].append(row)
        header = ["learner", "joined", "last_seen", "modules", "math_level", "accuracy", "points", "practised_this_week"]
        rows = []
        for member in members:
            rows.append(self._roster_row(member, per_learner[member.learner_id], profiles.get(member.learner_id), now))
        return (header, rows), ids

    @staticmethod
    def _roster_row(member: Any, progress: List[Any], profile: Any, now: datetime) -> list:
        seen = [p.last_seen for p in progress if p.last_seen is not None]
        if profile is not None and profile.updated_at is not None:
            seen.append(profile.updated_at)
        last_seen = max(seen) if seen else None
        attempts = sum(p.attempts for p in progress)
        correct = sum(p.correct for p in progress)
        math = next((p for p in progress if p.module == "math"), None)
        practised = any(p.last_seen is not None and now - p.last_seen <= WEEK for p in progress)
        return [
            display_name(member.learner_id, profile.name if profile is not None else None),
            _day(member.joined_at), _minute(last_seen),
            " ".join(sorted(p.module for p in progress if p.attempts or p.points)) or "-",
            math.level if math is not None else None,
            round(correct / attempts, 2) if attempts else None,
            sum(p.points for p in progress),
            "yes" if practised else "NO",
        ]

    # ------------------------------------------------------------------ one learner
    def learner(self, learner_id: str, with_texts: bool) -> Tuple[str, Dict[str, Table], List[str]]:
        """Name to show, tables, and what is missing."""
        with self.read.connect() as conn:
            profile = conn.execute(sa.select(learner_profile).where(learner_profile.c.learner_id == learner_id)).first()
            progress = conn.execute(sa.select(learner_progress).where(learner_progress.c.learner_id == learner_id)
                                    .order_by(learner_progress.c.module)).fetchall()
            joined = conn.execute(sa.select(class_members.c.class_code).where(
                class_members.c.learner_id == learner_id)).scalars().all()
        tables: Dict[str, Table] = {
            "progress": (["module", "level", "points", "attempts", "correct", "accuracy", "last_seen"],
                         [[p.module, p.level, p.points, p.attempts, p.correct,
                           round(p.correct / p.attempts, 2) if p.attempts else None, _minute(p.last_seen)]
                          for p in progress]),
            "classes": (["class"], [[code] for code in joined]),
        }
        missing: List[str] = []
        if self.has_events():
            rows = analytics.load_events(self.read, sender=learner_id, max_rows=MAX_LEARNER_EVENTS)
            analysis = analytics.analyse(rows, grade=is_right)
            tables.update(analytics.learner_tables(analysis, learner_id, with_texts=with_texts))
        else:
            missing.append(NO_EVENTS)
        return display_name(learner_id, profile.name if profile is not None else None), tables, missing

    # ------------------------------------------------------------------ overview
    def has_events(self) -> bool:
        return sa.inspect(self.read).has_table("events")

    def overview(self) -> Overview:
        """The programme's tables over the last ``days`` days (cached a minute: the page may
        be reloaded by many people, the database should not notice)."""
        cached = self._overview
        if cached is not None and time.monotonic() - cached[0] < OVERVIEW_CACHE_SECONDS:
            return cached[1]
        result = Overview(since=_kigali_today() - timedelta(days=self.days - 1))
        if self.has_events():
            rows = analytics.load_events(self.read, since=result.since, max_rows=MAX_EVENTS)
            if len(rows) >= MAX_EVENTS:
                result.missing.append(f"only the latest {MAX_EVENTS} events of the period are counted")
            analysis = analytics.analyse(rows, grade=is_right)
        else:
            result.missing.append(NO_EVENTS)
            analysis = analytics.Analysis(turns=[], sessions=[])
        progress = analytics.load_math_progress(str(self.read.url.render_as_string(hide_password=False)))
        if progress is None:
            result.missing.append("no progress store to read (math levels)")
        result.tables = analytics.overview_tables(analysis, progress)
        self._overview = (time.monotonic(), result)
        return result


NO_EVENTS = ("no events table: conversations are counted from PostgreSQL's events table, written by the "
             "production stack (make run-prod); under make run only progress and classes are shown")


def _kigali_today() -> date:
    return (datetime.now(timezone.utc) + timedelta(hours=analytics.KIGALI_UTC_OFFSET)).date()


def _day(value: Optional[datetime]) -> Optional[str]:
    return value.strftime("%Y-%m-%d") if value else None


def _minute(value: Optional[datetime]) -> Optional[str]:
    return value.strftime("%Y-%m-%d %H:%M") if value else None


async def in_thread(function: Any, *args: Any) -> Any:
    """Blocking database work off the web server's event loop."""
    return await asyncio.to_thread(function, *args)

"""Event retention: what learners said leaves PostgreSQL's ``events`` table after a while.

::

    python -m infra.retention [--days N] [--mode strip|delete] [--dry-run]
    make events-retention [DAYS=N] [MODE=delete]        # e.g. daily from cron

Defaults: ``EVENT_RETENTION_DAYS`` (**365**) and ``EVENT_RETENTION_MODE`` (**strip**).
``DATABASE_URL`` (or its parts) as everywhere else (:mod:`infra.settings`).

* ``strip`` (default) keeps every event older than N days but without learner text, so
  the programme report (``scripts/report.py``: turns, sessions, channels, modules,
  fallbacks, latency, math accuracy) still covers earlier years, and an erasure request
  (:mod:`infra.learner_data`) still finds the rows by their (pseudonymous) sender id.
  Removed: a message's text, entities and ids (``message_id``, CallSid, MessageSid, caller
  country: only the channel and input kind stay in its metadata), the bot's texts (they
  quote names and answers), text slots (``name``, ``answer``...: a plain number of up to 6
  digits stays, it grades a math answer), free text inside state slots (the debate tutor's
  pending argument) and the session start metadata. The intent and its confidence stay.
  A stripped event gets ``"redacted": true`` and is skipped afterwards.
* ``delete`` removes events older than N days altogether.

Events still waiting in the local spool are minutes old (the flusher moves them within
seconds while PostgreSQL is up) and are left alone.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import sqlalchemy as sa
import yaml

from core.config import env

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DAYS = 365
DEFAULT_MODE = "strip"
MODES = ("strip", "delete")
BATCH = 1000
KEPT_SLOT_TYPES = ("categorical", "bool", "float")  # values from a fixed set, never learner text
KEPT_METADATA = ("channel", "input", "utter_action")
_SMALL_NUMBER = re.compile(r"^\s*-?\d{1,6}\s*$")
TIMESTAMP = "CAST(CAST(data AS jsonb) ->> 'timestamp' AS double precision)"


def slot_types(domain_path: Path = ROOT / "domain.yml") -> Dict[str, str]:
    """Slot name -> type, from the domain (a slot not listed there is treated as text)."""
    slots = (yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}).get("slots") or {}
    return {name: str((spec or {}).get("type", "text")) for name, spec in slots.items()}


# --------------------------------------------------------------------------- stripping
def _metadata(value: Any) -> Dict[str, Any]:
    return {k: v for k, v in value.items() if k in KEPT_METADATA} if isinstance(value, dict) else {}


def _state(value: Any) -> Any:
    """A state slot without free text: top-level strings that are not short ids go."""
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items()
            if not (isinstance(v, str) and (len(v) > 40 or any(c.isspace() for c in v)))}


def _slot_value(name: str, value: Any, types: Mapping[str, str]) -> Any:
    if name == "session_started_metadata":
        return _metadata(value)
    kind = types.get(name, "text")
    if kind in KEPT_SLOT_TYPES:
        return value
    if kind == "any":
        return _state(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) or \
            isinstance(value, str) and _SMALL_NUMBER.match(value):
        return value  # a number such as a math answer: not personal, and the report grades it
    return None


def strip_event(event: Dict[str, Any], types: Mapping[str, str]) -> Dict[str, Any]:
    """The event without learner text (see the module doc); other fields unchanged."""
    out = dict(event)
    kind = out.get("event")
    if kind == "user":
        intent = (out.get("parse_data") or {}).get("intent") or {}
        out.update(text=None, message_id=None, metadata=_metadata(out.get("metadata")),
                   parse_data={"intent": {k: intent.get(k) for k in ("name", "confidence") if k in intent},
                               "entities": []})
    elif kind == "bot":
        out.update(text=None, data={}, metadata=_metadata(out.get("metadata")))
    elif kind == "slot":
        out["value"] = _slot_value(str(out.get("name")), out.get("value"), types)
    elif kind == "entities":
        out["entities"] = []
    elif out.get("text") is not None:
        out["text"] = None
    out["redacted"] = True
    return out


# --------------------------------------------------------------------------- the table
def _engine(url: str) -> sa.engine.Engine:
    url = "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url
    engine = sa.create_engine(url, future=True, connect_args={"connect_timeout": 10,
                                                               "application_name": "bakame-retention"})
    if engine.dialect.name != "postgresql":
        raise ValueError("event retention needs the PostgreSQL events table")
    return engine


def strip_older(engine: sa.engine.Engine, cutoff: float, types: Mapping[str, str], dry_run: bool = False) -> int:
    """Strip learner text from events before ``cutoff`` (unix time); how many."""
    select = sa.text(
        "SELECT id, data FROM events WHERE id > :after"
        f" AND {TIMESTAMP} < :cutoff"
        " AND CAST(data AS jsonb) ->> 'event' IN ('user', 'bot', 'slot', 'entities')"
        " AND CAST(data AS jsonb) -> 'redacted' IS NULL ORDER BY id LIMIT :limit")
    update = sa.text("UPDATE events SET data = :data WHERE id = :id")
    done, after = 0, 0
    while True:
        with engine.begin() as conn:  # one transaction per batch: short locks on a live table
            rows = conn.execute(select, {"after": after, "cutoff": cutoff, "limit": BATCH}).fetchall()
            if not rows:
                return done
            if not dry_run:
                conn.execute(update, [{"id": r.id, "data": json.dumps(strip_event(json.loads(r.data), types))}
                                      for r in rows])
        done += len(rows)
        after = rows[-1].id


def delete_older(engine: sa.engine.Engine, cutoff: float, dry_run: bool = False) -> int:
    """Delete events before ``cutoff`` (unix time); how many."""
    if dry_run:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM events WHERE {TIMESTAMP} < :cutoff"),
                                    {"cutoff": cutoff}).scalar())
    delete = sa.text(f"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE {TIMESTAMP} < :cutoff"
                     " ORDER BY id LIMIT :limit)")
    done = 0
    while True:
        with engine.begin() as conn:
            removed = conn.execute(delete, {"cutoff": cutoff, "limit": BATCH}).rowcount
        done += removed
        if removed < BATCH:
            return done


def apply_retention(url: str, days: int, mode: str, now: Optional[float] = None, dry_run: bool = False) -> int:
    """Strip or delete the events older than ``days``; how many events it concerned."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    cutoff = (time.time() if now is None else now) - days * 86400
    engine = _engine(url)
    try:
        if not sa.inspect(engine).has_table("events"):
            return 0
        if mode == "delete":
            return delete_older(engine, cutoff, dry_run)
        return strip_older(engine, cutoff, slot_types(), dry_run)
    finally:
        engine.dispose()


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.retention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=None,
                        help=f"keep learner text this many days (default: $EVENT_RETENTION_DAYS or {DEFAULT_DAYS})")
    parser.add_argument("--mode", choices=MODES, default=None, help="strip learner text or delete the events "
                        f"(default: $EVENT_RETENTION_MODE or {DEFAULT_MODE})")
    parser.add_argument("--dry-run", action="store_true", help="count only, change nothing")
    args = parser.parse_args(argv)
    try:
        days = args.days if args.days is not None else int(env("EVENT_RETENTION_DAYS") or DEFAULT_DAYS)
        mode = args.mode or env("EVENT_RETENTION_MODE", default=DEFAULT_MODE).lower()
        if days < 1:
            raise ValueError("the retention must be at least 1 day")
        from infra.settings import production_env

        count = apply_retention(production_env()["DATABASE_URL"], days, mode, dry_run=args.dry_run)
    except ValueError as exc:
        print(f"retention: {exc}", file=sys.stderr)
        return 2
    except sa.exc.SQLAlchemyError as exc:
        print(f"retention: the events database is unreachable or failed ({type(exc).__name__}); "
              "nothing half-done matters: run it again", file=sys.stderr)
        return 1
    before = datetime.fromtimestamp(time.time() - days * 86400, timezone.utc).strftime("%Y-%m-%d")
    verb = {"strip": "stripped of learner text", "delete": "deleted"}[mode]
    print(f"events before {before} ({days} days): {count} {'would be ' if args.dry_run else ''}{verb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Everything stored about one learner: export it, or erase it (Rwanda's law N° 058/2021
on personal data: the right of access and the right to erasure).

::

    python -m infra.learner_data export --phone +250788123456 [--out FILE]
    python -m infra.learner_data erase  --phone +250788123456
    python -m infra.learner_data export --sender <conversation id>     # e.g. a REST learner
    make learner-export PHONE=+250788123456      make learner-erase SENDER=tw_0123...

The stores are those of the production stack, found as it finds them
(:func:`infra.settings.production_env`: ``REDIS_URL``, ``REDIS_LOCK_DB``,
``REDIS_KEY_PREFIX``, ``DATABASE_URL``, ``EVENT_SPOOL_PATH``; ``PROGRESS_DB_URL`` if set).
A phone number becomes the conversation id exactly as the Twilio channels make it
(``normalise_number`` + ``SenderIdHasher(SENDER_ID_SECRET)``); the number itself is only
ever echoed masked (``+2507******56``) and is never stored.

What one learner has, per store:

* Redis: the tracker ``<prefix>:tracker:<id>`` (compaction rewrites this one key, nothing
  else); the lock store's ``<prefix>:lock:<id>:seq|queue`` (in ``REDIS_LOCK_DB``); the
  Twilio channels' state under ``bakame:twilio:`` -- keys naming the conversation id
  (``sms:conv:<id>``, ``sms:turn:<id>:<turn>``) or one of the learner's CallSids /
  MessageSids (``voice:call:<CallSid>``, ``voice:turn:<CallSid>:<turn>``,
  ``voice:ended:<CallSid>``, ``sms:sid:<MessageSid>``), the sids being read from the
  learner's events. Keys are found with SCAN and an exact ``:``-delimited match, never
  KEYS or FLUSH. Outreach (``<prefix>:outreach:``, ``infra.number_store``): the learner's
  sealed number, guardian link (and the guardian's number when no other learner names
  them), queued callbacks, reminders and reports, today's counters. The event outbox
  (``<prefix>:event_outbox``, :mod:`infra.tracker_store`): the fields ending in ``:<id>``, a
  turn's events on their way to the spool (exported as ``outbox_events``).
* PostgreSQL: ``events`` rows with ``sender_id = <id>``; ``learner_progress`` and
  ``learner_profile`` rows with ``learner_id = <id>`` (the actions use the sender id).
* the event spools (SQLite at ``EVENT_SPOOL_PATH`` and, beside it, those of the other Rasa
  processes named alike, ``events-1.sqlite``...: docs/scaling.md): rows not yet moved to PostgreSQL.

Erasing takes the learner's turn lock first (a turn in progress finishes, the next one
waits), so no turn writes the tracker back half-way; the spool and the events table are
cleared twice, in case the spool flusher was moving a batch at that moment. It is
idempotent: a second run removes nothing and still exits 0.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import glob
import json
import os
import re
import sqlite3
import sys
from urllib.parse import urlsplit, urlunsplit
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from core.config import env

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPORT_DIR = ROOT / "exports"
ERASE_LOCK_LIFETIME = 300.0  # seconds: the erase holds the learner's turn lock this long at most
_E164 = re.compile(r"^\+\d{8,15}$")


class LearnerDataError(RuntimeError):
    """A one-line reason the command cannot go on (printed, exit 2)."""


# --------------------------------------------------------------------------- who
def mask_number(number: str) -> str:
    """``+250788123456`` -> ``+2507******56``: enough for an operator to recognise it."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:5] + "*" * (len(number) - 7) + number[-2:]


def conversation_id(phone: Optional[str], sender: Optional[str], environ: Mapping[str, str]) -> Tuple[str, str]:
    """The conversation id and how to name the learner on screen (masked number or id)."""
    from core.identity import SenderIdHasher, normalise_number, short_ref

    if bool(phone) == bool(sender):
        raise LearnerDataError("give exactly one of PHONE (a phone number) or SENDER (a conversation id)")
    if sender:
        return sender.strip(), f"conversation {short_ref(sender.strip())}"
    number = normalise_number(phone)
    if not _E164.match(number):
        raise LearnerDataError("PHONE must be an international number such as +250788123456")
    secret = (environ.get("SENDER_ID_SECRET") or "").strip()
    if not secret:
        raise LearnerDataError("SENDER_ID_SECRET is not set: it is needed to find a phone number's conversation")
    return SenderIdHasher(secret).sender_id(number), mask_number(number)


@dataclasses.dataclass
class Stores:
    """Where the production stack keeps learner data (its own settings, derived alike)."""

    redis_url: str
    lock_db: int
    key_prefix: str
    redis_parts: Dict[str, str]
    database_url: str
    progress_url: str
    spool_path: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Stores":
        from infra.settings import production_env

        try:
            env = production_env(environ)
        except ValueError as exc:
            raise LearnerDataError(str(exc)) from exc
        return cls(
            redis_url=env["REDIS_URL"], lock_db=int(env["REDIS_LOCK_DB"]), key_prefix=env["REDIS_KEY_PREFIX"],
            redis_parts={k: env[k] for k in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_SSL")},
            database_url=env["DATABASE_URL"],
            progress_url=(environ.get("PROGRESS_DB_URL") or "").strip() or env["DATABASE_URL"],
            spool_path=Path(env["EVENT_SPOOL_PATH"]).expanduser(),
        )


# --------------------------------------------------------------------------- Redis
def glob_escape(value: str) -> str:
    """``value`` literally inside a Redis MATCH pattern."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", value)


def names_one_of(key: str, identifiers: Iterable[str]) -> bool:
    """The key has one of ``identifiers`` as a whole ``:``-delimited part (never a substring)."""
    padded = f":{key}:"
    return any(ident and f":{ident}:" in padded for ident in identifiers)


def channel_state_prefix() -> str:
    """The phone channels' key prefix in Redis (connectors/state.py uses the same constant)."""
    from infra.redis_client import CHANNEL_STATE_PREFIX

    return CHANNEL_STATE_PREFIX


def sids_in(events: Iterable[Mapping[str, Any]]) -> Set[str]:
    """The CallSids and MessageSids the learner's events mention (they name channel state)."""
    found: Set[str] = set()
    for event in events:
        session_start = event.get("value") if event.get("name") == "session_started_metadata" else None
        for metadata in (event.get("metadata"), session_start):
            if isinstance(metadata, dict):
                found.update(str(metadata[k]) for k in ("call_sid", "message_sid") if metadata.get(k))
    return found


def read_key(client: Any, key: str) -> Any:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        raw = client.get(key)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text
    if kind == "zset":
        return [[m.decode("utf-8", "replace"), s] for m, s in client.zrange(key, 0, -1, withscores=True)]
    return {"type": kind}


class RedisData:
    """Tracker, channel state and turn locks of one learner."""

    def __init__(self, stores: Stores) -> None:
        from rasa.core.tracker_store import DEFAULT_REDIS_TRACKER_STORE_KEY_PREFIX

        from infra.redis_client import redis_client

        options = dict(use_asyncio=False, socket_timeout=10, socket_connect_timeout=5)
        self.main = redis_client(stores.redis_url, **options)
        # redis-py lets a URL's database win over db=: name the lock database in the URL itself.
        lock_url = urlunsplit(urlsplit(stores.redis_url)._replace(path=f"/{stores.lock_db}"))
        self.locks = redis_client(lock_url, **options)
        self.stores = stores
        self.tracker_prefix = f"{stores.key_prefix}:{DEFAULT_REDIS_TRACKER_STORE_KEY_PREFIX}"
        self.lock_prefix = f"{stores.key_prefix}:lock:"
        self.state_prefix = channel_state_prefix()

    def tracker_key(self, sender_id: str) -> str:
        return self.tracker_prefix + sender_id

    def stored_events(self, sender_id: str) -> List[Dict[str, Any]]:
        raw = self.main.get(self.tracker_key(sender_id))
        return (json.loads(raw).get("events") or []) if raw else []

    def channel_keys(self, identifiers: Set[str]) -> List[str]:
        match = glob_escape(self.state_prefix) + "*"
        keys = (k.decode("utf-8", "replace") for k in self.main.scan_iter(match=match, count=1000))
        return sorted(k for k in keys if names_one_of(k[len(self.state_prefix):], identifiers))

    def lock_keys(self, sender_id: str) -> List[str]:
        match = glob_escape(self.lock_prefix + sender_id) + ":*"
        return sorted(k.decode("utf-8", "replace") for k in self.locks.scan_iter(match=match, count=1000))

    def outbox(self, sender_id: str) -> Dict[bytes, bytes]:
        """The learner's entries in the event outbox (fields ``<ms>:<random>:<id>``)."""
        from infra.tracker_store import outbox_key

        match = "*:*:" + glob_escape(sender_id)
        return {f: v for f, v in self.main.hscan_iter(outbox_key(self.stores.key_prefix), match=match, count=1000)
                if f.decode("utf-8", "replace").split(":", 2)[-1] == sender_id}

    def export(self, sender_id: str, identifiers: Set[str]) -> Dict[str, Any]:
        state = {k[len(self.state_prefix):]: read_key(self.main, k) for k in self.channel_keys(identifiers)}
        locks = {k: read_key(self.locks, k) for k in self.lock_keys(sender_id)}
        from infra.number_store import export_sync, outreach_prefix

        outbox: List[Any] = []
        for _, value in sorted(self.outbox(sender_id).items()):  # oldest first
            turn = _json(value.decode("utf-8", "replace"))
            outbox.extend(turn if isinstance(turn, list) else [turn])
        return {"tracker": tracker_as_rasa_dict(sender_id, self.stored_events(sender_id)),
                "channel_state": state, "locks": locks, "outbox_events": outbox,
                "outreach": export_sync(self.main, sender_id, outreach_prefix(self.stores.key_prefix))}

    def erase(self, sender_id: str, identifiers: Set[str], counts: Dict[str, int]) -> None:
        from infra.tracker_store import outbox_key

        counts["redis tracker"] += int(self.main.delete(self.tracker_key(sender_id)))
        fields = list(self.outbox(sender_id))
        counts["redis event outbox"] += int(self.main.hdel(outbox_key(self.stores.key_prefix), *fields)) if fields else 0
        channel = self.channel_keys(identifiers)
        counts["redis channel state"] += int(self.main.delete(*channel)) if channel else 0
        counts["redis rate limits"] += int(self.main.delete(*self.rate_limit_keys(sender_id)))
        counts["outreach numbers, guardian links, jobs"] += self.erase_outreach(sender_id)

    def erase_outreach(self, sender_id: str) -> int:
        """The learner's sealed number, guardian link and queued callbacks, reminders, reports."""
        from infra.number_store import erase_sync, outreach_prefix

        return erase_sync(self.main, sender_id, outreach_prefix(self.stores.key_prefix))

    def rate_limit_keys(self, sender_id: str) -> List[str]:
        """The per-learner rate limiter's window and notice keys (infra/rate_limit.py)."""
        from infra.rate_limit import digest

        key = f"{self.stores.key_prefix}:ratelimit:learner:{digest(sender_id)}"
        return [key, key + ":notice"]

    def erase_locks(self, sender_id: str) -> int:
        keys = self.lock_keys(sender_id)
        return int(self.locks.delete(*keys)) if keys else 0

    def turn_lock(self) -> Any:
        """The production lock store (same keys, database and ticket order as Rasa's turns)."""
        from infra.lock_store import ResilientRedisLockStore

        parts = self.stores.redis_parts
        return ResilientRedisLockStore(host=parts["REDIS_HOST"], port=parts["REDIS_PORT"], db=self.stores.lock_db,
                                       password=parts["REDIS_PASSWORD"] or None, use_ssl=parts["REDIS_SSL"],
                                       key_prefix=self.stores.key_prefix)

    def close(self) -> None:
        self.main.close()
        self.locks.close()


def tracker_as_rasa_dict(sender_id: str, events: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The stored tracker as Rasa's HTTP API shows it (slots, latest message, every event)."""
    if not events:
        return None
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

    try:
        slots = Domain.load(str(ROOT / "domain.yml")).slots
    except Exception:  # noqa: BLE001 - no domain file here: the events alone, as stored
        return {"sender_id": sender_id, "events": events}
    tracker = DialogueStateTracker.from_dict(sender_id, events, slots)
    return tracker.current_state(EventVerbosity.ALL)


# --------------------------------------------------------------------------- events
class EventRows:
    """The learner's rows in PostgreSQL's ``events`` table (infra/event_broker.py)."""

    def __init__(self, stores: Stores) -> None:
        import sqlalchemy as sa

        self.sa = sa
        url = stores.database_url
        url = "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True,
                                       connect_args={"connect_timeout": 10, "application_name": "bakame-learner-data"})

    def _has_table(self) -> bool:
        return self.sa.inspect(self.engine).has_table("events")

    def export(self, sender_id: str) -> List[Dict[str, Any]]:
        if not self._has_table():
            return []
        query = self.sa.text("SELECT id, event_key, data FROM events WHERE sender_id = :s ORDER BY id")
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"s": sender_id}).fetchall()
        return [{"id": r.id, "event_key": r.event_key, "event": _json(r.data)} for r in rows]

    def erase(self, sender_id: str) -> int:
        if not self._has_table():
            return 0
        with self.engine.begin() as conn:
            return int(conn.execute(self.sa.text("DELETE FROM events WHERE sender_id = :s"), {"s": sender_id}).rowcount)

    def close(self) -> None:
        self.engine.dispose()


def spool_glob(path: Path) -> str:
    """The names of the spools of every Rasa process beside ``path``: several processes behind a
    load balancer each have their own (``events-1.sqlite``, ``events-2.sqlite``: docs/scaling.md)."""
    return f"{glob.escape(path.stem)}*{glob.escape(path.suffix)}"


def spool_files(path: Path) -> List[Path]:
    return sorted({path, *(path.parent.glob(spool_glob(path)) if path.parent.is_dir() else [])})


class SpoolRows:
    """The learner's events still waiting in the local spools (SQLite, EVENT_SPOOL_PATH and the
    other processes' spools beside it, ``spool_files``)."""

    def __init__(self, path: Path) -> None:
        self.paths = spool_files(path)

    def export(self, sender_id: str) -> List[Dict[str, Any]]:
        return [row for path in self.paths for row in self._export(path, sender_id)]

    def erase(self, sender_id: str) -> int:
        return sum(self._erase(path, sender_id) for path in self.paths)

    @staticmethod
    def _connect(path: Path) -> Optional[sqlite3.Connection]:
        if not path.exists():  # nothing spooled here; do not create the file
            return None
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='spool'").fetchone() is None:
            conn.close()
            return None
        return conn

    def _export(self, path: Path, sender_id: str) -> List[Dict[str, Any]]:
        conn = self._connect(path)
        if conn is None:
            return []
        with closing(conn):
            rows = conn.execute("SELECT seq, event_key, data, published_at FROM spool WHERE sender_id = ? ORDER BY seq",
                                (sender_id,)).fetchall()
        return [{"seq": s, "event_key": k, "published_at": p, "event": _json(d)} for s, k, d, p in rows]

    def _erase(self, path: Path, sender_id: str) -> int:
        conn = self._connect(path)
        if conn is None:
            return 0
        with closing(conn):
            conn.execute("BEGIN IMMEDIATE")
            removed = conn.execute("DELETE FROM spool WHERE sender_id = ?", (sender_id,)).rowcount
            conn.execute("COMMIT")
        return int(removed)


def _json(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


# --------------------------------------------------------------------------- progress
class ProgressRows:
    """Progress per module and the profile (infra/progress_store.py)."""

    def __init__(self, stores: Stores) -> None:
        from infra.progress_store import ProgressStore

        self.store = ProgressStore(stores.progress_url)

    async def export(self, sender_id: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
        if not self._storable(sender_id):
            return {}, None
        progress = {module: dataclasses.asdict(p) for module, p in (await self.store.summary(sender_id)).items()}
        profile = await self.store.load_profile(sender_id)
        return progress, dataclasses.asdict(profile) if profile is not None else None

    async def classes(self, sender_id: str) -> List[Dict[str, Any]]:
        """The classes the learner joined (erased with the progress: ProgressStore.forget)."""
        return await self.store.classes_of(sender_id) if self._storable(sender_id) else []

    async def erase(self, sender_id: str, counts: Dict[str, int]) -> None:
        if not self._storable(sender_id):
            return
        progress, profile = await self.export(sender_id)
        # forget() also drops writes still queued for this learner (PROGRESS_SPOOL_PATH); with
        # the database down the erasure itself is queued and applied when it is back.
        if not await self.store.forget(sender_id):
            print("progress: the database is unreachable; the erasure is queued and applied when it is back")
        counts["progress"] += len(progress)
        counts["profile"] += int(profile is not None)

    @staticmethod
    def _storable(sender_id: str) -> bool:
        """The progress store refuses ids that look like phone numbers: it holds none of them."""
        from infra.progress_store import validate_learner_id

        try:
            validate_learner_id(sender_id)
            return True
        except ValueError:
            return False

    async def close(self) -> None:
        await self.store.dispose()


# --------------------------------------------------------------------------- commands
ERASE_REPORT = (("redis tracker", "key"), ("redis event outbox", "turn"), ("redis channel state", "key"), ("redis turn locks", "key"),
                ("redis rate limits", "key"), ("outreach numbers, guardian links, jobs", "key"),
                ("events (PostgreSQL)", "row"), ("event spool", "row"), ("progress", "row"), ("profile", "row"))


def _open(stores: Stores) -> Tuple[RedisData, EventRows, SpoolRows, ProgressRows]:
    return RedisData(stores), EventRows(stores), SpoolRows(stores.spool_path), ProgressRows(stores)


def _identifiers(sender_id: str, tracker_events: List[Dict[str, Any]], rows: List[Dict[str, Any]]) -> Set[str]:
    """What the learner's Redis keys may be named after: the id and its Call/MessageSids."""
    return {sender_id} | sids_in(tracker_events + [r["event"] for r in rows if isinstance(r["event"], dict)])


async def export_learner(sender_id: str, stores: Stores) -> Dict[str, Any]:
    """Everything stored about the learner, as one JSON-ready document."""
    redis_data, events, spool, progress = _open(stores)
    try:
        event_rows, spooled = events.export(sender_id), spool.export(sender_id)
        identifiers = _identifiers(sender_id, redis_data.stored_events(sender_id), event_rows + spooled)
        document: Dict[str, Any] = {
            "format": "bakame-learner-export/1",
            "exported_at": datetime.now(timezone.utc).isoformat(),
            "conversation_id": sender_id,
        }
        document.update(redis_data.export(sender_id, identifiers))
        document["events"] = event_rows
        document["spooled_events"] = spooled
        document["progress"], document["profile"] = await progress.export(sender_id)
        document["classes"] = await progress.classes(sender_id)
        return document
    finally:
        redis_data.close()
        events.close()
        await progress.close()


async def erase_learner(sender_id: str, stores: Stores) -> Dict[str, int]:
    """Remove the learner from every store; what was removed, per store."""
    counts = {name: 0 for name, _ in ERASE_REPORT}
    redis_data, events, spool, progress = _open(stores)
    try:
        counts["redis turn locks"] = len(redis_data.lock_keys(sender_id))  # left over from earlier turns
        lock_store = redis_data.turn_lock()
        async with lock_store.lock(sender_id, lock_lifetime=ERASE_LOCK_LIFETIME):
            identifiers = _identifiers(sender_id, redis_data.stored_events(sender_id),
                                       events.export(sender_id) + spool.export(sender_id))
            redis_data.erase(sender_id, identifiers, counts)
            for _ in range(2):  # twice: a batch the spool flusher had in hand is caught the second time
                counts["event spool"] += spool.erase(sender_id)
                counts["events (PostgreSQL)"] += events.erase(sender_id)
            await progress.erase(sender_id, counts)
        await lock_store.redis.close()
        redis_data.erase_locks(sender_id)  # ours, and any the learner left
        return counts
    finally:
        redis_data.close()
        events.close()
        await progress.close()


def write_export(document: Dict[str, Any], out: Optional[str]) -> Path:
    """The document as a JSON file readable by its owner only (mode 0600)."""
    if out:
        path = Path(out).expanduser()
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = DEFAULT_EXPORT_DIR / f"learner-{document['conversation_id'][:11]}-{stamp}.json"
        DEFAULT_EXPORT_DIR.mkdir(mode=0o700, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed, whatever the umask
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2, default=_iso)
        handle.write("\n")
    return path


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.learner_data",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("export", "erase"))
    parser.add_argument("--phone", default=env("PHONE"),
                        help="the learner's phone number (default: $PHONE; needs SENDER_ID_SECRET)")
    parser.add_argument("--sender", default=env("SENDER"),
                        help="the conversation id instead (REST learners; default: $SENDER)")
    parser.add_argument("--out", default=None, help="export file (default: exports/learner-<id>-<time>.json)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        sender_id, who = conversation_id(args.phone, args.sender, os.environ)
        stores = Stores.from_env(os.environ)
        if args.command == "export":
            path = write_export(asyncio.run(export_learner(sender_id, stores)), args.out)
            print(f"exported {who} to {path}")
            return 0
        counts = asyncio.run(erase_learner(sender_id, stores))
    except LearnerDataError as exc:
        print(f"learner_data: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a store unreachable: one line, then the operator retries
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        print(f"learner_data: {args.command} failed ({type(exc).__name__}: {detail}); "
              "run it again once the store is back (erasing is idempotent)", file=sys.stderr)
        return 1
    print(f"erased {who}:")
    for name, unit in ERASE_REPORT:
        print(f"  {name:<22} {counts[name]} {unit}{'' if counts[name] == 1 else 's'} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

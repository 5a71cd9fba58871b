"""The one learner-progress store of BAKAME (SQLAlchemy 1.4, async engine).

Tables (created on first use):

``learner_progress``  one row per (learner_id, module): attempts, correct, level,
                      points, streak, misses, seen (JSON text), last_seen, updated_at
``learner_profile``   one row per learner_id: name, language, created_at, updated_at

Database selection (first match wins):

``PROGRESS_DB_URL``   any SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``)
``DATABASE_URL``      e.g. ``postgres://user:pw@host:5432/db?sslmode=require``
``PROGRESS_DB_PATH``  SQLite file path (default ``./bakame_progress.db``)

``postgres://``/``postgresql://``/``postgresql+psycopg2://`` are normalised to
``postgresql+asyncpg://`` (``sslmode`` becomes asyncpg's ``ssl``), ``sqlite://`` to
``sqlite+aiosqlite://``. ``PROGRESS_DB_SCHEMA`` (PostgreSQL only) puts the tables
in that schema (created if missing).

``learner_id`` is the conversation's sender id -- the Twilio connectors make it a
keyed hash of the phone number. Ids that look like raw phone numbers are refused
with ``ValueError``: a phone number must never be stored.

Datetimes come back timezone-aware in UTC (naive input is taken as UTC).
Database failures raise :class:`ProgressStoreError`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    event,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool
from sqlalchemy.types import TypeDecorator

from actions.tutoring.base import Progress

logger = logging.getLogger(__name__)

DEFAULT_SQLITE_FILE = "bakame_progress.db"
MAX_ID_LEN = 128
MAX_MODULE_LEN = 64
MAX_NAME_LEN = 100
MAX_LANG_LEN = 8
CONNECT_TIMEOUT = 5  # seconds; a turn must not hang on an unreachable database


class ProgressStoreError(RuntimeError):
    """The database could not be reached or the statement failed."""


# --------------------------------------------------------------------------- schema
class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in Python; timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if isinstance(value, str):  # defensive: hand-written SQLite rows
            value = datetime.fromisoformat(value)
        return _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


metadata = MetaData()

learner_progress = Table(
    "learner_progress",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("learner_id", String(MAX_ID_LEN), nullable=False),
    Column("module", String(MAX_MODULE_LEN), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("correct", Integer, nullable=False, default=0),
    Column("level", Integer, nullable=False, default=1),
    Column("points", Integer, nullable=False, default=0),
    Column("streak", Integer, nullable=False, default=0),
    Column("misses", Integer, nullable=False, default=0),
    Column("seen", Text, nullable=False, default="[]"),  # JSON list of item ids
    Column("last_seen", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False, default=_now),
    UniqueConstraint("learner_id", "module", name="uq_learner_progress_learner_module"),
)

learner_profile = Table(
    "learner_profile",
    metadata,
    Column("learner_id", String(MAX_ID_LEN), primary_key=True),
    Column("name", String(MAX_NAME_LEN), nullable=True),
    Column("language", String(MAX_LANG_LEN), nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=_now),
    Column("updated_at", UTCDateTime, nullable=False, default=_now),
)


@dataclass
class LearnerProfile:
    learner_id: str
    name: Optional[str] = None
    language: Optional[str] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None


# --------------------------------------------------------------------------- validation
_SCHEME_PREFIX = re.compile(r"^(whatsapp|tel|sms|phone|voice|sip):", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-().]")
_PLUS_NUMBER = re.compile(r"\+\s*\d(?:[\s\-().]?\d){7,}")


def looks_like_phone_number(value: str) -> bool:
    """``+250788123456``, ``0788 123 456``, ``whatsapp:+250...``, any 9+ digits only,
    or a ``+`` followed by 8+ digits anywhere (hashes never contain ``+``)."""
    stripped = _SEPARATORS.sub("", _SCHEME_PREFIX.sub("", value.strip()))
    if re.fullmatch(r"\+?\d{9,}", stripped):
        return True
    return bool(_PLUS_NUMBER.search(value))


def validate_learner_id(learner_id: Any) -> str:
    if not isinstance(learner_id, str) or not learner_id.strip():
        raise ValueError("learner_id must be a non-empty string (the conversation sender id)")
    learner_id = learner_id.strip()
    if looks_like_phone_number(learner_id):
        raise ValueError(
            "learner_id looks like a raw phone number; pass the hashed sender id "
            "(a phone number must never be stored)"
        )
    if len(learner_id) > MAX_ID_LEN:
        raise ValueError(f"learner_id is longer than {MAX_ID_LEN} characters")
    return learner_id


def _validate_module(module: Any) -> str:
    if not isinstance(module, str) or not module.strip():
        raise ValueError("module must be a non-empty string")
    module = module.strip()
    if len(module) > MAX_MODULE_LEN:
        raise ValueError(f"module is longer than {MAX_MODULE_LEN} characters")
    return module


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())[:MAX_NAME_LEN]
    if not name:
        raise ValueError("name must not be empty")
    if looks_like_phone_number(name) or re.search(r"\d{9,}", _SEPARATORS.sub("", name)):
        raise ValueError("name looks like a phone number; it is not stored")
    return name


def _clean_language(language: str) -> str:
    language = str(language).strip().lower()
    if not language or len(language) > MAX_LANG_LEN:
        raise ValueError("language must be a short code such as 'en' or 'rw'")
    return language


# --------------------------------------------------------------------------- urls
def database_url_from_env() -> str:
    url = os.environ.get("PROGRESS_DB_URL") or os.environ.get("DATABASE_URL")
    if url and url.strip():
        return url.strip()
    path = os.environ.get("PROGRESS_DB_PATH") or DEFAULT_SQLITE_FILE
    return "sqlite:///" + str(Path(path).expanduser().resolve())


def normalise_url(url: str) -> URL:
    """SQLAlchemy URL with an async driver (asyncpg / aiosqlite)."""
    url = url.strip()
    if url.startswith("postgres://"):  # Heroku/Render style
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported progress database {backend!r} (use SQLite or PostgreSQL)")
    return parsed


# --------------------------------------------------------------------------- store
def _row_to_progress(row: Any) -> Progress:
    try:
        seen = json.loads(row.seen or "[]")
    except ValueError:
        seen = []
    if not isinstance(seen, list):
        seen = []
    return Progress(
        attempts=row.attempts,
        correct=row.correct,
        level=row.level,
        points=row.points,
        streak=row.streak,
        misses=row.misses,
        seen=[str(s) for s in seen],
        last_seen=row.last_seen,
    )


def _progress_values(progress: Progress) -> Dict[str, Any]:
    last_seen = progress.last_seen
    if last_seen is not None and not isinstance(last_seen, datetime):
        raise ValueError("progress.last_seen must be a datetime or None")
    try:
        return {
            "attempts": int(progress.attempts),
            "correct": int(progress.correct),
            "level": int(progress.level),
            "points": int(progress.points),
            "streak": int(progress.streak),
            "misses": int(progress.misses),
            "seen": json.dumps([str(s) for s in (progress.seen or [])], ensure_ascii=False),
            "last_seen": last_seen,
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid progress: {type(exc).__name__}") from exc


class ProgressStore:
    """Async progress/profile store; one engine (connection pool) per event loop."""

    def __init__(
        self,
        url: Optional[str] = None,
        schema: Optional[str] = None,
        pool_size: int = 5,
        max_overflow: int = 10,
        echo: bool = False,
    ) -> None:
        self.url = normalise_url(url or database_url_from_env())
        self.dialect = self.url.get_backend_name()
        schema = schema if schema is not None else os.environ.get("PROGRESS_DB_SCHEMA") or None
        if schema is not None:
            if self.dialect != "postgresql":
                logger.warning("PROGRESS_DB_SCHEMA is ignored for SQLite")
                schema = None
            elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
                raise ValueError("schema must be a plain SQL identifier")
        self.schema = schema
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.echo = echo
        self._engine: Optional[AsyncEngine] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._lock: Optional[asyncio.Lock] = None
        self._ready = False

    def __repr__(self) -> str:
        return f"ProgressStore({self.url.render_as_string(hide_password=True)!r}, schema={self.schema!r})"

    # ------------------------------------------------------------------ engine
    def _make_engine(self) -> AsyncEngine:
        url = self.url
        kwargs: Dict[str, Any] = {"echo": self.echo, "future": True}
        if self.schema:
            kwargs["execution_options"] = {"schema_translate_map": {None: self.schema}}
        if self.dialect == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:") or "mode=memory" in str(url):
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs.update(
                    poolclass=AsyncAdaptedQueuePool,
                    pool_size=self.pool_size,
                    max_overflow=self.max_overflow,
                    connect_args={"timeout": 30},
                )
            engine = create_async_engine(url, **kwargs)
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
            return engine
        # PostgreSQL via asyncpg
        connect_args: Dict[str, Any] = {
            "timeout": CONNECT_TIMEOUT,
            "server_settings": {"application_name": "bakame-progress"},
        }
        query = dict(url.query)
        sslmode = query.pop("sslmode", None)
        if sslmode:
            connect_args["ssl"] = sslmode if isinstance(sslmode, str) else sslmode[0]
            url = url.set(query=query)
        kwargs.update(
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            pool_pre_ping=True,
            pool_recycle=1800,
            pool_timeout=CONNECT_TIMEOUT,
            connect_args=connect_args,
        )
        return create_async_engine(url, **kwargs)

    async def _get_engine(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        if self._engine is None or self._loop is not loop:
            # Pooled connections belong to the loop that opened them.
            self._engine = self._make_engine()
            self._loop = loop
            self._lock = asyncio.Lock()
        if not self._ready:
            assert self._lock is not None
            async with self._lock:
                if not self._ready:
                    await self._create_tables(self._engine)
                    self._ready = True
        return self._engine

    async def _create_tables(self, engine: AsyncEngine) -> None:
        for attempt in (1, 2):  # another process may create them at the same time
            try:
                async with engine.begin() as conn:
                    if self.schema:
                        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                    await conn.run_sync(metadata.create_all)
                return
            except (IntegrityError, ProgrammingError):  # "already exists" race
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2)

    def _insert(self):
        return pg_insert if self.dialect == "postgresql" else sqlite_insert

    async def dispose(self) -> None:
        """Close pooled connections (call on shutdown, on the serving loop)."""
        engine, self._engine, self._loop = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    # ------------------------------------------------------------------ progress
    async def load(self, learner_id: str, module: str) -> Progress:
        """The stored progress, or a fresh ``Progress()`` for a new learner/module."""
        learner_id, module = validate_learner_id(learner_id), _validate_module(module)
        try:
            engine = await self._get_engine()
            async with engine.connect() as conn:
                result = await conn.execute(
                    select(learner_progress).where(
                        learner_progress.c.learner_id == learner_id,
                        learner_progress.c.module == module,
                    )
                )
                row = result.first()
        except Exception as exc:  # driver/network errors are not all wrapped
            raise ProgressStoreError(f"could not load progress: {type(exc).__name__}") from exc
        return _row_to_progress(row) if row is not None else Progress()

    async def save(self, learner_id: str, module: str, progress: Progress) -> None:
        """Insert or replace the (learner_id, module) row."""
        learner_id, module = validate_learner_id(learner_id), _validate_module(module)
        values = _progress_values(progress)
        values["updated_at"] = _now()
        insert = self._insert()
        stmt = insert(learner_progress).values(learner_id=learner_id, module=module, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[learner_progress.c.learner_id, learner_progress.c.module],
            set_={key: stmt.excluded[key] for key in values},
        )
        try:
            engine = await self._get_engine()
            async with engine.begin() as conn:
                await conn.execute(stmt)
        except Exception as exc:  # driver/network errors are not all wrapped
            raise ProgressStoreError(f"could not save progress: {type(exc).__name__}") from exc

    async def summary(self, learner_id: str) -> Dict[str, Progress]:
        """Every module's progress for this learner, keyed by module."""
        learner_id = validate_learner_id(learner_id)
        try:
            engine = await self._get_engine()
            async with engine.connect() as conn:
                result = await conn.execute(
                    select(learner_progress)
                    .where(learner_progress.c.learner_id == learner_id)
                    .order_by(learner_progress.c.module)
                )
                rows = result.fetchall()
        except Exception as exc:  # driver/network errors are not all wrapped
            raise ProgressStoreError(f"could not load summary: {type(exc).__name__}") from exc
        return {row.module: _row_to_progress(row) for row in rows}

    # ------------------------------------------------------------------ profile
    async def load_profile(self, learner_id: str) -> Optional[LearnerProfile]:
        """The learner's profile, or ``None`` for a new learner."""
        learner_id = validate_learner_id(learner_id)
        try:
            engine = await self._get_engine()
            async with engine.connect() as conn:
                result = await conn.execute(
                    select(learner_profile).where(learner_profile.c.learner_id == learner_id)
                )
                row = result.first()
        except Exception as exc:  # driver/network errors are not all wrapped
            raise ProgressStoreError(f"could not load profile: {type(exc).__name__}") from exc
        if row is None:
            return None
        return LearnerProfile(
            learner_id=row.learner_id,
            name=row.name,
            language=row.language,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def save_profile(
        self, learner_id: str, name: Optional[str] = None, language: Optional[str] = None
    ) -> None:
        """Create or update the profile; ``None`` leaves a field unchanged."""
        learner_id = validate_learner_id(learner_id)
        changes: Dict[str, Any] = {}
        if name is not None:
            changes["name"] = _clean_name(name)
        if language is not None:
            changes["language"] = _clean_language(language)
        now = _now()
        insert = self._insert()
        stmt = insert(learner_profile).values(
            learner_id=learner_id, created_at=now, updated_at=now, **changes
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[learner_profile.c.learner_id],
            set_={**{key: stmt.excluded[key] for key in changes}, "updated_at": now},
        )
        try:
            engine = await self._get_engine()
            async with engine.begin() as conn:
                await conn.execute(stmt)
        except Exception as exc:  # driver/network errors are not all wrapped
            raise ProgressStoreError(f"could not save profile: {type(exc).__name__}") from exc

    async def delete_learner(self, learner_id: str) -> None:
        """Erase everything stored about a learner (progress and profile)."""
        learner_id = validate_learner_id(learner_id)
        try:
            engine = await self._get_engine()
            async with engine.begin() as conn:
                await conn.execute(
                    delete(learner_progress).where(learner_progress.c.learner_id == learner_id)
                )
                await conn.execute(
                    delete(learner_profile).where(learner_profile.c.learner_id == learner_id)
                )
        except Exception as exc:  # driver/network errors are not all wrapped
            raise ProgressStoreError(f"could not delete learner: {type(exc).__name__}") from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    except Exception:  # pragma: no cover - e.g. read-only or in-memory databases
        pass
    finally:
        cursor.close()


_store: Optional[ProgressStore] = None


def get_store() -> ProgressStore:
    """The process-wide store (configured from the environment on first use)."""
    global _store
    if _store is None:
        _store = ProgressStore()
    return _store


def reset_store() -> None:
    """Forget the process-wide store (tests; re-reads the environment next time)."""
    global _store
    _store = None

"""Dashboard users: roles, argon2 password hashes, login rate limiting, and classes.

Roles: ``admin`` (everything, learner export/erase), ``teacher`` (their own classes and
those classes' learners only), ``viewer`` (the overview's aggregates only). Accounts are made
by ``make dashboard-user`` (``python -m dashboard user``); there is no default account or
password.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import List, Optional, Sequence

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from core.class_codes import normalise_code
from infra.progress_store import classes
from dashboard.db import login_attempts, users

ROLES = ("admin", "teacher", "viewer")
MIN_PASSWORD_LENGTH = 10
# Login rate limiting (hand-written: no maintained limiter for Sanic 21 keeps its counts in
# the database, which is what survives restarts and is shared by several processes).
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_CLIENT = 20
FAILURE_WINDOW_SECONDS = 15 * 60

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A user or class cannot be created as asked (one line for the operator)."""


@dataclass(frozen=True)
class User:
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def create_user(write: Engine, username: str, password: str, role: str, class_codes: Sequence[str] = (),
                class_names: Sequence[str] = ()) -> User:
    """Create or update a user (a new password replaces the old one); a teacher's classes are
    created with the given codes (or a new 4-digit code each) and returned by :func:`classes_of`."""
    username = username.strip()
    if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise AccountError("the username must be 1-64 letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if (class_codes or class_names) and role != "teacher":
        raise AccountError("only a teacher has classes")
    with write.begin() as conn:
        conn.execute(users.delete().where(users.c.username == username))
        conn.execute(users.insert().values(username=username, password_hash=_hasher.hash(password), role=role,
                                           created_at=time.time()))
        for code, name in _classes_asked(class_codes, class_names):
            _add_class(conn, username, code, name)
    return User(username, role)


def _classes_asked(codes: Sequence[str], names: Sequence[str]) -> List[tuple]:
    count = max(len(codes), len(names))
    return [(codes[i] if i < len(codes) else None, names[i] if i < len(names) else None) for i in range(count)]


def _add_class(conn: sa.engine.Connection, teacher: str, code: Optional[str], name: Optional[str]) -> str:
    if code:
        code_ok = normalise_code(code)
        if code_ok is None:
            raise AccountError(f"class code {code!r}: 3-8 letters or digits with at least one digit")
        owner = conn.execute(sa.select(classes.c.teacher).where(classes.c.code == code_ok)).first()
        if owner is not None and owner.teacher != teacher:
            raise AccountError(f"class {code_ok} belongs to another teacher")
        if owner is not None:
            if name:
                conn.execute(classes.update().where(classes.c.code == code_ok).values(name=name))
            return code_ok
    else:
        code_ok = _new_code(conn)
    conn.execute(classes.insert().values(code=code_ok, name=name or code_ok, teacher=teacher,
                                         created_at=datetime.now(timezone.utc)))
    return code_ok


def _new_code(conn: sa.engine.Connection) -> str:
    """Four digits: easy to say, type and key on any phone."""
    for _ in range(200):
        code = f"{secrets.randbelow(9000) + 1000}"
        if conn.execute(sa.select(classes.c.code).where(classes.c.code == code)).first() is None:
            return code
    raise AccountError("no free 4-digit class code left; give one with --class-code")


def authenticate(write: Engine, username: str, password: str, client: str) -> Optional[User]:
    """The user when the password is right and neither the username nor the client has too
    many recent failures; every failure is recorded. Raises :class:`RateLimited`."""
    username = (username or "").strip()[:64]
    client = (client or "unknown")[:64]
    now = time.time()
    with write.begin() as conn:
        since = now - FAILURE_WINDOW_SECONDS
        conn.execute(login_attempts.delete().where(login_attempts.c.at < since))
        failures = sa.select(sa.func.count()).select_from(login_attempts).where(login_attempts.c.at >= since)
        if conn.execute(failures.where(login_attempts.c.username == username)).scalar() >= MAX_FAILURES_PER_USER or \
                conn.execute(failures.where(login_attempts.c.client == client)).scalar() >= MAX_FAILURES_PER_CLIENT:
            raise RateLimited()
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        if _verify(row.password_hash if row is not None else _DUMMY_HASH, password) and row is not None:
            conn.execute(login_attempts.delete().where(login_attempts.c.username == username))
            return User(row.username, row.role)
        conn.execute(login_attempts.insert().values(username=username, client=client, at=now))
    return None


class RateLimited(Exception):
    """Too many failed logins for this username or client: wait FAILURE_WINDOW_SECONDS."""


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def get_user(engine: Engine, username: str) -> Optional[User]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.username, users.c.role).where(users.c.username == username)).first()
    return User(row.username, row.role) if row is not None else None

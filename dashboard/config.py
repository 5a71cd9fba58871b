"""Dashboard settings from the environment.

``DASHBOARD_PORT``         port (default 8080); ``DASHBOARD_HOST`` (default 127.0.0.1; 0.0.0.0 in Compose)
``DASHBOARD_SECRET_KEY``   signs the session cookies; required for a production start
                           (``make dashboard``), at least 32 characters, no placeholder
``DASHBOARD_DATABASE_URL`` where the dashboard writes its own tables (users, login attempts)
                           and classes; default: the progress store's database
                           (PROGRESS_DB_URL, DATABASE_URL, else the SQLite file of ``make run``)
``DASHBOARD_READ_URL``     the read-only connection for learner data (events, progress, profiles,
                           classes); default: the database above as ``DASHBOARD_READ_USER``
                           (``bakame_dashboard_ro``, password ``DASHBOARD_READ_PASSWORD``) on
                           PostgreSQL, the same file opened read-only on SQLite
``DASHBOARD_SECURE_COOKIES`` ``true`` behind HTTPS (cookies then only travel encrypted)
``DASHBOARD_DAYS``         days of events the overview reads (default 30)
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import List, Mapping, Optional

from sqlalchemy.engine import make_url

from core.config import as_bool, env

MIN_SECRET_KEY_LENGTH = 32
DEFAULT_READ_USER = "bakame_dashboard_ro"


@dataclass(frozen=True)
class DashboardConfig:
    host: str
    port: int
    secret_key: str
    write_url: str
    read_url: str
    read_user: Optional[str]
    read_password: Optional[str]
    production: bool
    secure_cookies: bool
    days: int

    @property
    def postgres(self) -> bool:
        return make_url(self.write_url).get_backend_name() == "postgresql"


def sync_url(url: str) -> str:
    """A synchronous SQLAlchemy URL (psycopg2 / pysqlite) for any URL the project uses."""
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise ValueError(f"unsupported database {backend!r} (use SQLite or PostgreSQL)")
    return str(parsed.set(drivername=backend).render_as_string(hide_password=False))


def _default_write_url(environ: Mapping[str, str], production: bool) -> str:
    explicit = env("DASHBOARD_DATABASE_URL", "PROGRESS_DB_URL", environ=environ)
    if explicit:
        return sync_url(explicit)
    if production:
        from infra.settings import production_env

        return sync_url(production_env(environ)["DATABASE_URL"])
    from infra.progress_store import database_url_from_env

    return sync_url(database_url_from_env())


def read_url_for(write_url: str, user: Optional[str], password: Optional[str]) -> str:
    parsed = make_url(write_url)
    if parsed.get_backend_name() == "sqlite":
        # Opened read-only by SQLite itself: the file cannot be written through this connection.
        return f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
    return str(parsed.set(username=user, password=password or None).render_as_string(hide_password=False))


def secret_key_problems(environ: Mapping[str, str]) -> List[str]:
    from infra.settings import is_placeholder

    value = env("DASHBOARD_SECRET_KEY", default="", environ=environ)
    if not value:
        return ["DASHBOARD_SECRET_KEY is not set"]
    if is_placeholder(value):
        return ["DASHBOARD_SECRET_KEY is still a placeholder"]
    if len(value) < MIN_SECRET_KEY_LENGTH:
        return [f"DASHBOARD_SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters"]
    return []


def load(production: bool, environ: Optional[Mapping[str, str]] = None) -> DashboardConfig:
    """The settings; a production start without a usable secret key raises ``SystemExit``
    with one line saying what is missing (as infra/settings.py does for the assistant)."""
    environ = os.environ if environ is None else environ
    key = env("DASHBOARD_SECRET_KEY", default="", environ=environ)
    if production:
        problems = secret_key_problems(environ)
        if problems:
            from infra.settings import refusal

            raise SystemExit(refusal(problems))
    elif not key:
        key = secrets.token_hex(32)  # local trial: sessions last until the dashboard restarts
    write_url = _default_write_url(environ, production)
    read_user = env("DASHBOARD_READ_USER", default=DEFAULT_READ_USER, environ=environ)
    read_password = env("DASHBOARD_READ_PASSWORD", environ=environ)
    read_url = env("DASHBOARD_READ_URL", environ=environ)
    return DashboardConfig(
        host=env("DASHBOARD_HOST", default="127.0.0.1", environ=environ),
        port=int(env("DASHBOARD_PORT", default="8080", environ=environ)),
        secret_key=key,
        write_url=write_url,
        read_url=sync_url(read_url) if read_url else read_url_for(write_url, read_user, read_password),
        read_user=read_user,
        read_password=read_password,
        production=production,
        secure_cookies=as_bool(env("DASHBOARD_SECURE_COOKIES", environ=environ), False),
        days=int(env("DASHBOARD_DAYS", default="30", environ=environ)),
    )

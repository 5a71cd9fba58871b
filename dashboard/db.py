"""Engines and tables of the dashboard, and ``prepare`` (``make dashboard`` runs it first).

Two connections, two roles:

* **read** (``config.read_url``): every page's learner data -- ``events``,
  ``learner_progress``, ``learner_profile``, ``classes``, ``class_members`` -- through a
  PostgreSQL role that has only ``SELECT`` on those tables (``bakame_dashboard_ro``, created
  here), or the SQLite file opened read-only. A mistake in a page's query cannot change or
  delete learner data.
* **write** (``config.write_url``, the database's owner as the assistant uses it): the
  dashboard's own tables below, classes (``make dashboard-user``), and the admin's erase
  button, which runs ``infra/learner_data.py``'s erasure (it must delete everywhere).

The dashboard's own tables are prefixed ``dashboard_`` and hold no learner data.
"""
from __future__ import annotations

import logging
import re
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from dashboard.config import DashboardConfig

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

users = sa.Table(
    "dashboard_users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # admin | teacher | viewer
    sa.Column("created_at", sa.Float, nullable=False),
)

login_attempts = sa.Table(
    "dashboard_login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("client", sa.String(64), nullable=False, index=True),  # the client's address
    sa.Column("at", sa.Float, nullable=False, index=True),
)

LEARNER_TABLES = ("events", "learner_progress", "learner_profile", "classes", "class_members")
EVENT_INDEXES = {
    # the learner page reads one conversation; the overview reads recent days (infra/analytics.py)
    "ix_events_sender_id": "events (sender_id)",
    "ix_events_time": "events (((data::json ->> 'timestamp')::float8))",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def engine(url: str) -> Engine:
    options = {"future": True, "pool_pre_ping": True}
    if make_url(url).get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": 5, "application_name": "bakame-dashboard"}
    return sa.create_engine(url, **options)


def prepare(config: DashboardConfig) -> None:
    """Create what the dashboard needs (idempotent): the progress store's tables (classes and
    memberships among them) if the assistant has not yet, the dashboard's own tables, and on
    PostgreSQL the ``events`` table (if the broker has not yet) with its indexes, and the
    read-only role."""
    from infra.progress_store import metadata as progress_metadata

    write = engine(config.write_url)
    try:
        progress_metadata.create_all(write, checkfirst=True)
        metadata.create_all(write, checkfirst=True)
        if write.dialect.name == "postgresql":
            _prepare_postgres(write, config)
    finally:
        write.dispose()


def _prepare_postgres(write: Engine, config: DashboardConfig) -> None:
    from infra.event_broker import ensure_events_table

    ensure_events_table(write)  # as the broker creates it: granted now, even before the first event
    with write.begin() as conn:
        for name, target in EVENT_INDEXES.items():
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))
    if not config.read_user or make_url(config.read_url).username != config.read_user:
        return  # an explicit DASHBOARD_READ_URL: its role is managed by the operator
    create_read_only_role(write, config.read_user, config.read_password)


def create_read_only_role(write: Engine, role: str, password: Optional[str]) -> None:
    """A login role with SELECT on the learner tables only (nothing else, no writes)."""
    if not _IDENTIFIER.match(role):
        raise ValueError("DASHBOARD_READ_USER must be a plain lower-case SQL identifier")
    with write.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
        verb = "ALTER" if exists else "CREATE"
        if password:
            conn.execute(sa.text(f"{verb} ROLE {role} WITH LOGIN PASSWORD :pw NOSUPERUSER NOCREATEDB NOCREATEROLE")
                         .bindparams(pw=password))
        else:  # trust/peer authentication (a private network, the tests)
            conn.execute(sa.text(f"{verb} ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"))
        database = conn.execute(sa.text("SELECT current_database()")).scalar()
        conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        for table in LEARNER_TABLES:
            if conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar():
                conn.execute(sa.text(f"GRANT SELECT ON {table} TO {role}"))

"""The production environment, derived in one place.

``endpoints.prod.yml`` names every value as ``${VAR}`` (Rasa 3.6 has no default syntax and
an unset variable is an error). This module fills them all in from what the operator set:

* ``REDIS_URL`` (``redis://[:password@]host[:port][/db]``, ``rediss://`` for TLS) **or** its
  parts ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_PASSWORD``, ``REDIS_DB``, ``REDIS_SSL``;
* ``DATABASE_URL`` (``postgresql://user[:password]@host[:port]/db[?sslmode=...]``) **or**
  its parts ``POSTGRES_HOST``, ``POSTGRES_PORT``, ``POSTGRES_DB``, ``POSTGRES_USER``,
  ``POSTGRES_PASSWORD``, ``POSTGRES_SSLMODE``;
* ``ACTION_ENDPOINT_URL`` (default ``http://localhost:$ACTIONS_PORT/webhook``, port 5055),
  ``REDIS_LOCK_DB``, ``REDIS_KEY_PREFIX``, ``TRACKER_EXPIRY_SECONDS``,
  ``TRACKER_COMPACT_AFTER_TURNS`` (24; 0 keeps whole sessions in Redis), ``TRACKER_COMPACT_KEEP_TURNS`` (8),
  ``EVENT_SPOOL_PATH``.

A part set explicitly wins over the URL, the URL over the default; afterwards both the
URL and the parts are exported, consistent with each other (the Twilio channels and the
progress store read the URLs, the endpoints the parts).

Production starts are safe by default: :func:`secret_problems` names every secret that is
unset, empty, still a placeholder from ``.env.example`` or switched off, and ``check`` /
``exec`` refuse to start the Rasa server with one line naming them (README, "Production").

Command line::

    python -m infra.settings                 # print `export VAR=value` lines, passwords masked
    python -m infra.settings export --reveal # the same, unmasked (to eval)
    python -m infra.settings check           # exit 1 with one line when a secret is missing
    python -m infra.settings exec -- CMD...  # check (unless CMD is the action server), run CMD
    python -m infra.settings prepare         # create the database if it is missing
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from core import config
from core.config import as_bool

# Defaults for a developer machine (docker-compose passes its own URLs).
DEFAULTS: Dict[str, str] = {
    "REDIS_HOST": "localhost",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "",
    "REDIS_DB": "0",
    "REDIS_SSL": "false",
    "REDIS_KEY_PREFIX": "bakame",
    "TRACKER_EXPIRY_SECONDS": str(30 * 24 * 3600),  # a learner's conversation is kept 30 days
    # Long sessions are compacted in Redis (every event stays in PostgreSQL): see infra.tracker_store.
    "TRACKER_COMPACT_AFTER_TURNS": "24",
    "TRACKER_COMPACT_KEEP_TURNS": "8",
    "POSTGRES_HOST": "localhost",
    "POSTGRES_PORT": "5432",
    "POSTGRES_DB": "bakame",
    "POSTGRES_USER": "postgres",
    "POSTGRES_PASSWORD": "",
    "POSTGRES_SSLMODE": "",
    "ACTION_ENDPOINT_URL": "http://localhost:5055/webhook",
    "EVENT_SPOOL_PATH": ".spool/events.sqlite",
}

REDIS_PARTS = ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_SSL")
POSTGRES_PARTS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER",
                  "POSTGRES_PASSWORD", "POSTGRES_SSLMODE")

# Every variable endpoints.prod.yml references (tests check the file against this list).
ENDPOINT_VARIABLES = (
    "ACTION_ENDPOINT_URL", *REDIS_PARTS, "REDIS_LOCK_DB", "REDIS_KEY_PREFIX", "TRACKER_EXPIRY_SECONDS",
    "TRACKER_COMPACT_AFTER_TURNS", "TRACKER_COMPACT_KEEP_TURNS", *POSTGRES_PARTS, "EVENT_SPOOL_PATH",
)


# Secrets without which a production start is unsafe, and what each protects.
PRODUCTION_SECRETS: Dict[str, str] = {
    "TWILIO_AUTH_TOKEN": "proves each webhook request comes from Twilio",
    "SENDER_ID_SECRET": "keys the hash that turns phone numbers into conversation ids",
    "RASA_AUTH_TOKEN": "protects Rasa's HTTP API and the REST channel",
}
# Secrets of the aggregator's channels (connectors/ussd.py, connectors/at_sms.py), required
# when credentials.prod.yml mounts them: their callbacks are not signed.
AGGREGATOR_SECRETS: Dict[str, str] = {
    "AT_CALLBACK_SECRET": "the secret path segment that proves a callback was configured by us",
}
AGGREGATOR_CHANNELS = ("connectors.ussd.UssdInput", "connectors.at_sms.AfricasTalkingSmsInput")
# Outbound sending keeps real numbers (the aggregator's SMS outbox; OUTREACH_ENABLED: callbacks,
# reminders, guardian reports), sealed with these keys (core/number_vault.py, docs/outreach.md).
NUMBER_SECRETS: Dict[str, str] = {"NUMBER_KEYS": "encrypts the phone numbers kept for outbound messages"}
OUTBOUND_CHANNELS = ("connectors.at_sms.AfricasTalkingSmsInput",)
# A short key can be brute-forced over all Rwandan numbers (10^9) to reverse a conversation id.
MIN_SECRET_LENGTH = {"SENDER_ID_SECRET": 16, "RASA_AUTH_TOKEN": 16, "AT_CALLBACK_SECRET": 16}
ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
# The development sender-id key (connectors.security.DEV_SENDER_ID_SECRET) and the
# "change-me" family are placeholders even where .env.example is not shipped (the image).
_PLACEHOLDER = re.compile(r"^(change[-_ ]?me.*|bakame-local-development-only|x+|placeholder|secret|password|token)$",
                          re.IGNORECASE)
SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN", "API_KEY")


def _example_values(path: Path = ENV_EXAMPLE) -> set:
    """Every non-empty value in ``.env.example``: a secret still set to one is a placeholder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    values = set()
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#") and value.strip():
            values.add(value.strip())
    return values


def is_placeholder(value: str) -> bool:
    value = value.strip()
    return bool(_PLACEHOLDER.match(value)) or value in _example_values()


def secret_problems(environ: Optional[Mapping[str, str]] = None,
                    names: Optional[List[str]] = None) -> List[str]:
    """What makes a production start unsafe, one phrase each (empty: safe to start)."""
    environ = os.environ if environ is None else environ
    problems = []
    for name in names or list(PRODUCTION_SECRETS):
        value = config.env(name, default="", environ=environ)
        if name in NUMBER_SECRETS:
            problems += number_key_problems(value)
        elif not value:
            problems.append(f"{name} is not set")
        elif is_placeholder(value):
            problems.append(f"{name} is still a placeholder")
        elif len(value) < MIN_SECRET_LENGTH.get(name, 1):
            problems.append(f"{name} is shorter than {MIN_SECRET_LENGTH[name]} characters")
    if "TWILIO_AUTH_TOKEN" in (names or PRODUCTION_SECRETS) and \
            not as_bool(environ.get("TWILIO_VALIDATE_SIGNATURE"), True):
        problems.append("TWILIO_VALIDATE_SIGNATURE=false is allowed only for `make run`")
    return problems


def number_key_problems(spec: Optional[str]) -> List[str]:
    """What is wrong with ``NUMBER_KEYS`` (empty: usable)."""
    from core.number_vault import VaultConfigError, parse_keys

    if not (spec or "").strip():
        return ["NUMBER_KEYS is not set (outbound messages keep numbers encrypted: docs/outreach.md)"]
    try:
        parse_keys(spec or "")
    except VaultConfigError as exc:
        return [str(exc)]
    return []


def required_secrets(credentials: Optional[Path] = None) -> List[str]:
    """The secrets a production start with ``credentials`` needs: the aggregator's as well when
    it mounts the aggregator's channels."""
    names = list(PRODUCTION_SECRETS)
    path = credentials or Path(__file__).resolve().parent.parent / "credentials.prod.yml"
    try:
        import yaml

        mounted = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError):
        mounted = {}
    if any(channel in mounted for channel in AGGREGATOR_CHANNELS):
        names += list(AGGREGATOR_SECRETS)
    if any(channel in mounted for channel in OUTBOUND_CHANNELS) or as_bool(os.environ.get("OUTREACH_ENABLED"), False):
        names += list(NUMBER_SECRETS)
    return names


def refusal(problems: List[str]) -> str:
    """The one line a refused production start prints."""
    return (f"Refusing to start in production: {'; '.join(problems)}. "
            "Set them in the environment or .env (README, \"Production\"; e.g. `openssl rand -hex 24`).")


def parse_redis_url(url: str) -> Dict[str, str]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"REDIS_URL must start with redis:// or rediss:// (got {parts.scheme!r})")
    db = (parts.path or "/").lstrip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    return {
        "REDIS_HOST": parts.hostname or DEFAULTS["REDIS_HOST"],
        "REDIS_PORT": str(parts.port or 6379),
        "REDIS_PASSWORD": unquote(parts.password or ""),
        "REDIS_DB": str(int(db)),
        "REDIS_SSL": "true" if parts.scheme == "rediss" else "false",
    }


def parse_database_url(url: str) -> Dict[str, str]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL (got {parts.scheme!r})")
    return {
        "POSTGRES_HOST": parts.hostname or DEFAULTS["POSTGRES_HOST"],
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_DB": unquote((parts.path or "/").lstrip("/")) or DEFAULTS["POSTGRES_DB"],
        "POSTGRES_USER": unquote(parts.username or "") or DEFAULTS["POSTGRES_USER"],
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SSLMODE": parse_qs(parts.query).get("sslmode", [""])[0],
    }


def redis_url(parts: Mapping[str, str]) -> str:
    scheme = "rediss" if as_bool(parts.get("REDIS_SSL"), False) else "redis"
    auth = f":{quote(parts['REDIS_PASSWORD'], safe='')}@" if parts.get("REDIS_PASSWORD") else ""
    return f"{scheme}://{auth}{parts['REDIS_HOST']}:{parts['REDIS_PORT']}/{parts['REDIS_DB']}"


def database_url(parts: Mapping[str, str]) -> str:
    user = quote(parts["POSTGRES_USER"], safe="")
    if parts.get("POSTGRES_PASSWORD"):
        user += ":" + quote(parts["POSTGRES_PASSWORD"], safe="")
    query = f"?{urlencode({'sslmode': parts['POSTGRES_SSLMODE']})}" if parts.get("POSTGRES_SSLMODE") else ""
    db = quote(parts["POSTGRES_DB"], safe="")
    return f"postgresql://{user}@{parts['POSTGRES_HOST']}:{parts['POSTGRES_PORT']}/{db}{query}"


def production_env(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Every variable endpoints.prod.yml needs, plus consistent REDIS_URL and DATABASE_URL."""
    environ = os.environ if environ is None else environ
    out: Dict[str, str] = {}

    def given(name: str, default: Optional[str] = None) -> Optional[str]:
        return config.env(name, default=default, environ=environ)

    url = given("REDIS_URL")
    from_url = parse_redis_url(url) if url else {}
    for name in REDIS_PARTS:
        out[name] = given(name, from_url.get(name, DEFAULTS[name]))
    url = given("DATABASE_URL")
    from_url = parse_database_url(url) if url else {}
    for name in POSTGRES_PARTS:
        out[name] = given(name, from_url.get(name, DEFAULTS[name]))
    # Passwords may legitimately contain surrounding spaces: take them verbatim.
    for name in ("REDIS_PASSWORD", "POSTGRES_PASSWORD"):
        if given(name):
            out[name] = environ[name]

    for name in ("REDIS_KEY_PREFIX", "TRACKER_EXPIRY_SECONDS", "TRACKER_COMPACT_AFTER_TURNS",
                 "TRACKER_COMPACT_KEEP_TURNS", "ACTION_ENDPOINT_URL", "EVENT_SPOOL_PATH"):
        out[name] = given(name, DEFAULTS[name])
    if not given("ACTION_ENDPOINT_URL") and given("ACTIONS_PORT"):
        out["ACTION_ENDPOINT_URL"] = f"http://localhost:{given('ACTIONS_PORT')}/webhook"  # scripts/run.sh
    out["REDIS_LOCK_DB"] = given("REDIS_LOCK_DB", out["REDIS_DB"])

    for name in ("REDIS_PORT", "REDIS_DB", "REDIS_LOCK_DB", "POSTGRES_PORT", "TRACKER_EXPIRY_SECONDS",
                 "TRACKER_COMPACT_AFTER_TURNS", "TRACKER_COMPACT_KEEP_TURNS"):
        if not out[name].isdigit():
            raise ValueError(f"{name} must be a whole number (got {out[name]!r})")
    if not out["REDIS_KEY_PREFIX"].isalnum():
        raise ValueError("REDIS_KEY_PREFIX must be letters and digits only (Rasa ignores other prefixes)")

    out["REDIS_URL"] = redis_url(out)
    out["DATABASE_URL"] = database_url(out)
    return out


def _mask(name: str, value: str) -> str:
    """``value`` with passwords and secrets replaced by ``****`` (URLs keep their shape)."""
    if not value:
        return value
    if any(part in name for part in SECRET_NAMES):
        return "****"
    if name.endswith("_URL"):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", value)
    return value


def _exports(env: Mapping[str, str], reveal: bool = False) -> str:
    lines = [] if reveal else ["# passwords masked; `python -m infra.settings export --reveal` prints them (to eval)"]
    lines += [f"export {name}={shlex.quote(value if reveal else _mask(name, value))}"
              for name, value in sorted(env.items())]
    return "\n".join(lines)


def _is_action_server(command: List[str]) -> bool:
    """``rasa run actions`` / ``python -m rasa_sdk``: no webhooks, no conversation ids, no API."""
    head = [os.path.basename(word) for word in command[:3]]
    return head == ["rasa", "run", "actions"] or "rasa_sdk" in head


def prepare(env: Mapping[str, str]) -> str:
    """Create the PostgreSQL database when it does not exist yet (docker's postgres image
    does this itself; a plain server such as this machine's does not)."""
    import psycopg2
    from psycopg2 import sql

    kwargs = dict(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"],
                  password=env["POSTGRES_PASSWORD"] or None, connect_timeout=5,
                  sslmode=env["POSTGRES_SSLMODE"] or None)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        psycopg2.connect(dbname=env["POSTGRES_DB"], **kwargs).close()
        return f"database {env['POSTGRES_DB']!r} exists"
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = psycopg2.connect(dbname="postgres", **kwargs)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(env["POSTGRES_DB"])))
    finally:
        admin.close()
    return f"database {env['POSTGRES_DB']!r} created"


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        env = production_env()
    except ValueError as exc:
        print(f"infra.settings: {exc}", file=sys.stderr)
        return 2
    if not argv or argv[0] == "export":
        print(_exports(env, reveal="--reveal" in argv))
        return 0
    if argv[0] == "check":
        problems = secret_problems(names=required_secrets())
        if problems:
            print(refusal(problems), file=sys.stderr)
            return 1
        print("production secrets: set")
        return 0
    if argv[0] == "prepare":
        try:
            print(prepare(env))
        except Exception as exc:  # noqa: BLE001 - one line for the operator
            print(f"infra.settings: could not prepare the database: {exc}".strip(), file=sys.stderr)
            return 1
        return 0
    if argv[0] == "exec":
        command = argv[1:]
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            print("usage: python -m infra.settings exec -- COMMAND [ARGS...]", file=sys.stderr)
            return 2
        problems = [] if _is_action_server(command) else secret_problems(names=required_secrets())
        if problems:
            print(refusal(problems), file=sys.stderr)
            return 1
        os.environ.update(env)
        os.execvp(command[0], command)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

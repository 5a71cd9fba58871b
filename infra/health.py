"""Health checks shared by the action server's ``/healthz`` (``actions/health.py``) and
``scripts/healthcheck.py`` (docker-compose healthchecks, the documented Rasa-side check).

Each check returns ``{"status": ..., "detail": ...}`` and never raises. Statuses:

``ok``        working
``degraded``  the assistant still answers, something is missing (events wait in the
              spool, progress is not saved, the LLM is off/failing: offline texts)
``down``      learners cannot be served (Redis, for the Rasa server)
``disabled``  not configured (e.g. no LLM key: offline texts by design)
"""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, Optional

Check = Dict[str, Any]
TIMEOUT = 3.0


def _timed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def check_redis(url: Optional[str], timeout: float = TIMEOUT) -> Check:
    if not url:
        return {"status": "disabled", "detail": "REDIS_URL not set"}
    from infra.redis_client import redis_client

    started = time.monotonic()
    try:  # one probe, no retries: the check reports what it finds now
        client = redis_client(url, use_asyncio=False, socket_timeout=timeout, socket_connect_timeout=timeout,
                              retries=0)
        try:
            client.ping()
            info = client.info("persistence")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "detail": f"{type(exc).__name__}: {_short(exc)}", "ms": _timed(started)}
    aof = bool(info.get("aof_enabled"))
    return {"status": "ok", "detail": "append-only file on" if aof else "append-only file OFF",
            "appendonly": aof, "ms": _timed(started)}


def _psycopg2_dsn(url: str) -> str:
    url = url.strip()
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.split("+")[0] in ("postgres", "postgresql") else url


def check_database(url: Optional[str], timeout: float = TIMEOUT, table: Optional[str] = None) -> Check:
    """PostgreSQL (``SELECT 1``; with ``table``, also whether it exists) or a SQLite file."""
    if not url:
        return {"status": "disabled", "detail": "no database URL"}
    started = time.monotonic()
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        try:
            with sqlite3.connect(path, timeout=timeout) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001
            return {"status": "down", "detail": f"SQLite {type(exc).__name__}", "ms": _timed(started)}
        return {"status": "ok", "detail": "SQLite", "ms": _timed(started)}
    import psycopg2

    try:
        conn = psycopg2.connect(_psycopg2_dsn(url), connect_timeout=max(1, int(timeout)))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                result: Check = {"status": "ok", "detail": "PostgreSQL"}
                if table:
                    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                    result[f"{table}_table"] = bool(cur.fetchone()[0])
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "detail": f"{type(exc).__name__}: {_short(exc)}", "ms": _timed(started)}
    result["ms"] = _timed(started)
    return result


def check_spool(path: Optional[str]) -> Check:
    """Events waiting in the broker's local spool (the database was or is unreachable)."""
    if not path or not Path(path).exists():
        return {"status": "ok", "pending": 0, "detail": "empty"}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT)
        try:
            pending = int(conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001
        return {"status": "degraded", "detail": f"spool unreadable: {type(exc).__name__}"}
    return {"status": "ok" if pending < 1000 else "degraded", "pending": pending,
            "detail": f"{pending} event(s) waiting for the database"}


def check_llm(llm: Any, probe: bool = True, timeout: float = 2.0) -> Check:
    """The LLM client ``llm`` (``actions.llm.get_llm()``, passed in: infra does not import the
    action server): disabled (offline texts), the circuit breaker's state, and (``probe``)
    whether its server answers at all."""
    if llm is None:
        return {"status": "disabled", "detail": "no LLM client"}
    if not llm.enabled:
        return {"status": "disabled", "detail": "no LLM configured: offline texts"}
    breaker = llm.breaker.state
    result: Check = {"status": "ok", "breaker": breaker, "model": llm.model}
    if breaker != "closed":
        result.update(status="degraded", detail=f"circuit {breaker}: offline texts until it closes")
    if probe:
        reachable = _http_reachable((llm.base_url or "https://api.openai.com/v1").rstrip("/") + "/models", timeout)
        result["reachable"] = reachable
        if not reachable:
            result.update(status="degraded", detail="LLM server unreachable: offline texts (fallback)")
    result.setdefault("detail", "LLM reachable" if result.get("reachable", True) else "")
    return result


def _http_reachable(url: str, timeout: float) -> bool:
    """Any HTTP answer (even 401/404) counts: the server is there."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True
    except Exception:  # noqa: BLE001
        return False


def check_http(url: str, timeout: float = TIMEOUT) -> Check:
    import urllib.error
    import urllib.request

    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(65536).decode("utf-8", "replace")
            return {"status": "ok", "http": response.status, "body": body, "ms": _timed(started)}
    except urllib.error.HTTPError as exc:
        return {"status": "down", "http": exc.code, "detail": _short(exc), "ms": _timed(started)}
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "detail": f"{type(exc).__name__}: {_short(exc)}", "ms": _timed(started)}


def overall(checks: Dict[str, Check], critical: tuple = ()) -> str:
    """``down`` if a critical check is down, ``degraded`` if anything else is not ok."""
    statuses = {name: c.get("status") for name, c in checks.items()}
    if any(statuses.get(name) == "down" for name in critical):
        return "down"
    if any(s in ("down", "degraded") for s in statuses.values()):
        return "degraded"
    return "ok"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text[:160]


def stores_report(environ: Optional[Dict[str, str]] = None, probe_llm: bool = True, llm: Any = None) -> Dict[str, Any]:
    """Redis, PostgreSQL (events table), the event spool and the LLM client ``llm``, for the Rasa side."""
    from infra.settings import production_env

    env = production_env(os.environ if environ is None else environ)
    checks = {
        "redis": check_redis(env["REDIS_URL"]),
        "postgres": check_database(env["DATABASE_URL"], table="events"),
        "event_spool": check_spool(env["EVENT_SPOOL_PATH"]),
        "llm": check_llm(llm, probe=probe_llm),
    }
    if checks["postgres"]["status"] == "down":
        checks["postgres"]["status"] = "degraded"  # events wait in the spool; turns are answered
        checks["postgres"]["detail"] = "unreachable: events kept in the spool until it is back (" + \
            checks["postgres"].get("detail", "") + ")"
    return {"status": overall(checks, critical=("redis",)), "checks": checks}


def check_tts(environ: Optional[Dict[str, str]] = None, timeout: float = 2.0) -> Check:
    """The Kinyarwanda/English TTS servers (``TTS_BASE_URL_<LANG>``, connectors/speech_settings.py):
    disabled when none is configured (recorded prompts and Twilio's voice), degraded when one
    does not answer (the voice channel falls back to recordings and ``<Say>``)."""
    environ = os.environ if environ is None else environ
    urls = {lang: environ.get(f"TTS_BASE_URL_{lang.upper()}", "").strip() for lang in ("rw", "en")}
    urls = {lang: url for lang, url in urls.items() if url}
    if not urls:
        return {"status": "disabled", "detail": "no TTS server configured: recordings and <Say>"}
    reachable = {lang: _http_reachable(url.rstrip("/") + "/models", timeout) for lang, url in urls.items()}
    down = [lang for lang, ok in reachable.items() if not ok]
    if down:
        return {"status": "degraded", "detail": f"TTS unreachable for {', '.join(down)}: recordings and <Say>",
                "reachable": reachable}
    return {"status": "ok", "detail": "TTS reachable", "reachable": reachable}

"""``GET /healthz`` on the action server: PostgreSQL (progress store), Redis, LLM.

rasa-sdk's own ``GET /health`` only says the process is up. ``/healthz`` answers::

    {"status": "ok" | "degraded",
     "checks": {"progress_db": {...}, "redis": {...}, "llm": {...}}}

``progress_db.queued_writes`` is the number of progress writes waiting in the local queue
for the database (0 when all is well). HTTP 200 for ``ok`` and ``degraded`` (the action
server still answers: progress writes are queued and reads use the last known state when
its database is down, tutors use offline texts when the LLM is off or
failing), 503 if a check itself crashed. ``?probe=0`` skips the LLM network probe.

The route is added by ``actions/server.py`` (rasa-sdk's plugin hook).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from core.config import as_bool, env

logger = logging.getLogger(__name__)


def _llm() -> Any:
    try:
        from actions.llm import get_llm

        return get_llm()
    except Exception:  # noqa: BLE001 - an unusable client is reported as "no LLM client"
        logger.exception("LLM client unusable")
        return None


async def healthz(request: Request) -> HTTPResponse:
    from infra.progress_store import database_url_from_env
    from infra import health

    probe = as_bool(request.args.get("probe"), True)
    try:
        progress_db, redis_check, llm = await asyncio.gather(
            asyncio.to_thread(health.check_database, database_url_from_env()),
            asyncio.to_thread(health.check_redis, env("REDIS_URL")),
            asyncio.to_thread(health.check_llm, _llm(), probe),
        )
    except Exception as exc:  # noqa: BLE001
        logger.exception("health check failed")
        return response.json({"status": "down", "error": type(exc).__name__}, status=503)
    try:
        from infra.progress_store import get_store

        progress_db["queued_writes"] = await asyncio.to_thread(get_store().pending_writes)
    except Exception as exc:  # noqa: BLE001 - the queue file itself is unusable
        progress_db["queued_writes"] = None
        progress_db["queue_error"] = type(exc).__name__
    if progress_db["status"] == "down":
        progress_db["status"] = "degraded"
        progress_db["detail"] = ("unreachable: progress writes wait in the local queue ("
                                 + progress_db.get("detail", "") + ")")
    checks = {"progress_db": progress_db, "redis": redis_check, "llm": llm}
    return response.json({"status": health.overall(checks), "checks": checks}, status=200)

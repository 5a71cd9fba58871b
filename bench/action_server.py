"""``rasa run actions`` with a timing middleware: the action server's own time per action.

    python -m bench.action_server --actions actions --port 5055

Exactly rasa-sdk's server (``rasa_sdk.__main__``: same app, same executor, same Sanic
workers from ``SANIC_WORKERS``), plus a rasa-sdk plugin (the hook ``actions/health.py``
also uses) that times every ``POST /webhook`` from the moment Sanic hands over the
request to the moment the response is ready, and appends one line per call to
``$BENCH_ACTION_TIMINGS_DIR/actions-<pid>.jsonl``::

    [wall_time, action_name, total_ms, json_parse_ms, request_bytes, response_bytes, status, sender_id]

``json_parse_ms`` is the time to decode the request (the tracker Rasa sends with every
call); the handler then reuses the decoded body. Nothing else changes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

import pluggy

hookimpl = pluggy.HookimplMarker("rasa_sdk")
PLUGIN_NAME = "bakame-bench-timing"

_out: Optional[TextIO] = None


def _sink() -> Optional[TextIO]:
    """One line-buffered file per process (Sanic workers are forked: reopen per pid)."""
    global _out
    directory = os.environ.get("BENCH_ACTION_TIMINGS_DIR")
    if not directory:
        return None
    path = Path(directory) / f"actions-{os.getpid()}.jsonl"
    if _out is None or _out.name != str(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _out = path.open("a", buffering=1, encoding="utf-8")
    return _out


class TimingPlugin:
    @hookimpl
    def attach_sanic_app_extensions(self, app: Any) -> None:
        @app.middleware("request")
        async def _start(request: Any) -> None:
            if request.path != "/webhook":
                return
            request.ctx.bench_t0 = time.perf_counter()
            try:
                request.json  # noqa: B018 - decode now (cached for the handler), timed apart
            except Exception:  # noqa: BLE001 - the handler reports bad bodies itself
                pass
            request.ctx.bench_parse = time.perf_counter() - request.ctx.bench_t0

        @app.middleware("response")
        async def _stop(request: Any, response: Any) -> None:
            t0 = getattr(request.ctx, "bench_t0", None)
            if t0 is None:
                return
            elapsed = time.perf_counter() - t0
            sink = _sink()
            if sink is None:
                return
            try:
                call = request.json or {}
                action, sender = call.get("next_action"), call.get("sender_id")
            except Exception:  # noqa: BLE001
                action = sender = None
            body = getattr(response, "body", None) or b""
            sink.write(json.dumps([
                round(time.time(), 3), action, round(elapsed * 1000, 3),
                round(request.ctx.bench_parse * 1000, 3), len(request.body or b""), len(body),
                getattr(response, "status", 0), sender,
            ]) + "\n")


def register() -> None:
    from rasa_sdk.plugin import plugin_manager

    manager = plugin_manager()
    if manager.get_plugin(PLUGIN_NAME) is None:
        manager.register(TimingPlugin(), name=PLUGIN_NAME)


def main() -> None:
    overlay = os.environ.get("BENCH_OVERLAY_DIR")  # changed copies of packages (bench.rasa_launcher)
    if overlay:
        sys.path.insert(0, overlay)
    register()
    import rasa_sdk.__main__

    sys.argv[0] = "rasa run actions"
    rasa_sdk.__main__.main()


if __name__ == "__main__":
    main()

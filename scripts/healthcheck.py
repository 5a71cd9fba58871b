#!/usr/bin/env python3
"""Health of the production stack (docker-compose healthchecks; `make health`).

    python scripts/healthcheck.py rasa    [--url http://localhost:5005]   Rasa + its stores
    python scripts/healthcheck.py actions [--url http://localhost:5055]   GET /healthz
    python scripts/healthcheck.py stores                                 Redis, PostgreSQL,
                                                                         event spool, LLM

``rasa`` checks that the server answers (it only does once the model is loaded) and that
the REST channel is mounted, then the stores it depends on, read from the same environment
as endpoints.prod.yml (REDIS_URL / DATABASE_URL or their parts, see infra/settings.py):

* Redis down                 -> down      (exit 1: learners only get "try again shortly")
* PostgreSQL down            -> degraded  (exit 0: events wait in the spool, nothing lost)
* LLM off / failing / open   -> disabled or degraded (exit 0: offline texts)

Prints one line per check (``--json`` for the whole report). Exit 0 = ok or degraded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra import health  # noqa: E402


def _llm() -> Any:
    """The LLM client as the action server builds it (same environment); None if unusable."""
    try:
        from actions.llm import get_llm

        return get_llm()
    except Exception:  # noqa: BLE001
        return None


def rasa_report(url: str, probe_llm: bool) -> Dict[str, Any]:
    url = url.rstrip("/")
    server = health.check_http(url + "/")
    channel = health.check_http(url + "/webhooks/rest/")
    stores = health.stores_report(probe_llm=probe_llm, llm=_llm())
    checks = {"rasa": server, "rest_channel": channel, **stores["checks"]}
    return {"status": health.overall(checks, critical=("rasa", "rest_channel", "redis")), "checks": checks}


def actions_report(url: str) -> Dict[str, Any]:
    result = health.check_http(url.rstrip("/") + "/healthz", timeout=10)
    if result["status"] != "ok":
        return {"status": "down", "checks": {"action_server": result}}
    try:
        body = json.loads(result.get("body") or "{}")
    except ValueError:
        return {"status": "down", "checks": {"action_server": {"status": "down", "detail": "/healthz is not JSON"}}}
    checks = {"action_server": {"status": "ok", "ms": result.get("ms")}, **body.get("checks", {})}
    return {"status": body.get("status", "ok"), "checks": checks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=("rasa", "actions", "stores"))
    parser.add_argument("--url", help="server base URL (default localhost:5005 / localhost:5055)")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument("--no-llm-probe", action="store_true", help="do not contact the LLM server")
    args = parser.parse_args()

    try:
        if args.target == "rasa":
            report = rasa_report(args.url or f"http://localhost:{os.environ.get('RASA_PORT', '5005')}",
                                 not args.no_llm_probe)
        elif args.target == "actions":
            report = actions_report(args.url or f"http://localhost:{os.environ.get('ACTIONS_PORT', '5055')}")
        else:
            report = health.stores_report(probe_llm=not args.no_llm_probe, llm=_llm())
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not crash
        report = {"status": "down", "checks": {"healthcheck": {"status": "down", "detail": f"{type(exc).__name__}: {exc}"}}}

    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"{args.target}: {report['status']}")
        for name, check in report["checks"].items():
            detail = check.get("detail") or ""
            print(f"  {name:<14} {check.get('status', '?'):<9} {detail}".rstrip())
    return 1 if report["status"] == "down" else 0


if __name__ == "__main__":
    sys.exit(main())

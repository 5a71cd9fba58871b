"""``python -m dashboard``:

    serve  [--local]   prepare, then serve on DASHBOARD_HOST:DASHBOARD_PORT (``make dashboard``;
                       ``--local`` next to ``make run``: SQLite defaults, a per-start secret key)
    prepare [--local]  create the dashboard's tables, the events indexes and the read-only role
    user USERNAME --role admin|teacher|viewer [--class-code CODE]... [--class-name NAME]...
                       create or update an account (``make dashboard-user``); the password comes
                       from DASHBOARD_PASSWORD or is asked twice -- there is no default
"""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from typing import List, Optional

from dashboard import config as dashboard_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="BAKAME programme dashboard")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "prepare", "user"):
        command = sub.add_parser(name)
        command.add_argument("--local", action="store_true",
                             help="embedded defaults of `make run` (no secret key required)")
        if name == "user":
            command.add_argument("username")
            command.add_argument("--role", required=True, choices=("admin", "teacher", "viewer"))
            command.add_argument("--class-code", action="append", default=[], help="a teacher's class code (repeatable)")
            command.add_argument("--class-name", action="append", default=[], help="its name (same order)")
    return parser


def _password() -> str:
    password = os.environ.get("DASHBOARD_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit("dashboard: set DASHBOARD_PASSWORD or run this in a terminal (no default password exists)")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise SystemExit("dashboard: the passwords differ")
    return first


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The key signs cookies: a user command needs none, a server needs one in production.
    config = dashboard_config.load(production=not args.local and args.command == "serve")
    from dashboard import accounts, db

    db.prepare(config)
    if args.command == "prepare":
        print("dashboard: tables, indexes and the read-only role are ready")
        return 0
    if args.command == "user":
        write = db.engine(config.write_url)
        try:
            accounts.create_user(write, args.username, _password(), args.role, args.class_code, args.class_name)
            with write.connect() as conn:
                codes = [r.code for r in conn.execute(accounts.classes.select().where(
                    accounts.classes.c.teacher == args.username))]
        except accounts.AccountError as exc:
            print(f"dashboard: {exc}", file=sys.stderr)
            return 2
        finally:
            write.dispose()
        print(f"dashboard: {args.role} {args.username!r} saved" + (f"; classes: {', '.join(codes)}" if codes else ""))
        return 0
    from dashboard.app import create_app

    app = create_app(config)
    print(f"dashboard on http://{config.host}:{config.port}/ ({'production' if config.production else 'local'})",
          flush=True)
    app.run(host=config.host, port=config.port, workers=1, access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

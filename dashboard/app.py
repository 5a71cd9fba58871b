"""The dashboard's web app (Sanic, already in Rasa's dependency set; Jinja2 templates).

Pages: ``/login``; ``/`` overview (admin, viewer); ``/classes`` and ``/classes/<code>``
(teachers: their own classes only, else 403); ``/learners/<id>`` (admin, or a teacher of one
of the learner's classes); ``?csv=<table>`` on any page downloads that table;
``POST /learners/<id>/erase`` (admin); ``/healthz`` for Compose.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sqlalchemy.engine import Engine

from dashboard import accounts, charts, db
from dashboard.config import DashboardConfig
from dashboard.queries import Queries, in_thread, to_csv
from dashboard.security import COOKIE, Sessions, csrf_ok

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
TABLE_TITLES = yaml.safe_load((HERE / "titles.yml").read_text(encoding="utf-8"))  # page texts are data


@dataclass
class Dashboard:
    """What every request needs (``app.ctx.dashboard``)."""

    config: DashboardConfig
    write: Engine
    queries: Queries
    sessions: Sessions
    templates: Environment

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> response.HTTPResponse:
        html = self.templates.get_template(template).render(user=request.ctx.user, csrf=request.ctx.session["csrf"],
                                                            titles=TABLE_TITLES, **values)
        return response.html(html, status=status)

    def forbidden(self, request: Request) -> response.HTTPResponse:
        return self.page(request, "error.html", status=403, message="You do not have access to this page.")

    def csv_or_page(self, request: Request, tables: Dict[str, Any], template: str, **values: Any) -> response.HTTPResponse:
        """The page, or with ``?csv=<table>`` that table as a CSV download (same rights)."""
        wanted = request.args.get("csv")
        if wanted:
            if wanted not in tables:
                return self.page(request, "error.html", status=404, message="No such table.")
            return response.text(to_csv(tables[wanted]), content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{wanted}.csv"'})
        return self.page(request, template, tables=tables, **values)


def create_app(config: DashboardConfig, name: str = "bakame_dashboard") -> Sanic:
    app = Sanic(name)
    app.config.FORWARDED_SECRET = os.environ.get("DASHBOARD_FORWARDED_SECRET")  # behind a proxy: real client IPs
    app.ctx.dashboard = Dashboard(
        config=config, write=db.engine(config.write_url),
        queries=Queries(db.engine(config.read_url), days=config.days),
        sessions=Sessions(config.secret_key, secure=config.secure_cookies),
        templates=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])),
    )
    app.static("/static", str(HERE / "static"), name="static")
    app.register_middleware(load_session, "request")
    app.register_middleware(save_session, "response")
    app.blueprint(pages)
    return app


def _board(request: Request) -> Dashboard:
    return request.app.ctx.dashboard


async def load_session(request: Request) -> Optional[response.HTTPResponse]:
    """The signed session (a new one without a user if none), its user, the CSRF check of
    every POST, and the login page for anyone not logged in."""
    board = _board(request)
    session = board.sessions.load(request.cookies.get(COOKIE))
    request.ctx.new_session = session is None
    request.ctx.session = session or board.sessions.new()
    username = request.ctx.session.get("u")
    request.ctx.user = await in_thread(accounts.get_user, board.write, username) if username else None
    if request.method == "POST" and not csrf_ok(request.ctx.session, request.form.get("csrf")):
        return response.text("The form expired or did not come from this dashboard (CSRF check). Reload and retry.",
                             status=403)
    public = request.path in ("/login", "/healthz") or request.path.startswith("/static/")
    if request.ctx.user is None and not public:
        return response.redirect("/login")
    return None


async def save_session(request: Request, resp: response.HTTPResponse) -> None:
    if getattr(request.ctx, "new_session", False) and COOKIE not in resp.cookies:
        _board(request).sessions.store(resp, request.ctx.session)
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
    resp.headers.setdefault("Referrer-Policy", "same-origin")


pages = Blueprint("pages")


@pages.get("/healthz")
async def healthz(request: Request) -> response.HTTPResponse:
    return response.json({"status": "ok"})


@pages.get("/login")
async def login_form(request: Request) -> response.HTTPResponse:
    return _board(request).page(request, "login.html", error=None)


@pages.post("/login")
async def login(request: Request) -> response.HTTPResponse:
    board = _board(request)
    client = request.remote_addr or request.ip or "unknown"
    try:
        user = await in_thread(accounts.authenticate, board.write, request.form.get("username", ""),
                               request.form.get("password", ""), client)
    except accounts.RateLimited:
        return board.page(request, "login.html", status=429,
                          error="Too many failed logins. Wait 15 minutes, then try again.")
    if user is None:
        return board.page(request, "login.html", status=401, error="Wrong username or password.")
    resp = response.redirect("/" if user.role != "teacher" else "/classes")
    board.sessions.store(resp, board.sessions.new(user.username))  # a new session and CSRF token
    return resp


@pages.post("/logout")
async def logout(request: Request) -> response.HTTPResponse:
    resp = response.redirect("/login")
    _board(request).sessions.store(resp, _board(request).sessions.new())
    return resp


@pages.get("/")
async def overview(request: Request) -> response.HTTPResponse:
    board = _board(request)
    if request.ctx.user.role == "teacher":
        return response.redirect("/classes")
    data = await in_thread(board.queries.overview)
    health = await health_checks(board.config)
    return board.csv_or_page(request, data.tables, "overview.html", missing=data.missing, since=data.since,
                             health=health, charts=await in_thread(overview_charts, data.tables),
                             days=board.config.days)


@pages.get("/classes")
async def class_list(request: Request) -> response.HTTPResponse:
    board = _board(request)
    if request.ctx.user.role == "viewer":
        return board.forbidden(request)
    tables = {"classes": await in_thread(board.queries.classes_for, request.ctx.user)}
    return board.csv_or_page(request, tables, "classes.html")


@pages.get("/classes/<code>")
async def class_page(request: Request, code: str) -> response.HTTPResponse:
    board = _board(request)
    if not await in_thread(board.queries.can_see_class, request.ctx.user, code):
        return board.forbidden(request)
    roster, ids = await in_thread(board.queries.roster, code)
    return board.csv_or_page(request, {"roster": roster}, "class.html", code=code, ids=ids,
                             name=await in_thread(board.queries.class_name, code))


@pages.get("/learners/<learner_id>")
async def learner_page(request: Request, learner_id: str) -> response.HTTPResponse:
    board, user = _board(request), request.ctx.user
    if not await in_thread(board.queries.can_see_learner, user, learner_id):
        return board.forbidden(request)
    name, tables, missing = await in_thread(board.queries.learner, learner_id, user.is_admin)
    chart = await in_thread(learner_chart, tables)
    return board.csv_or_page(request, tables, "learner.html", name=name, learner_id=learner_id, missing=missing,
                             chart=chart)


@pages.post("/learners/<learner_id>/erase")
async def erase(request: Request, learner_id: str) -> response.HTTPResponse:
    board = _board(request)
    if not request.ctx.user.is_admin:
        return board.forbidden(request)
    counts = await erase_learner(learner_id)
    logger.info("learner erased by %s (%d items)", request.ctx.user.username, sum(counts.values()))
    return board.page(request, "erased.html", counts=counts)


async def erase_learner(learner_id: str) -> Dict[str, int]:
    """Every store, as ``make learner-erase`` does (infra/learner_data.py)."""
    from infra.learner_data import Stores, erase_learner as erase_everywhere

    return await erase_everywhere(learner_id, Stores.from_env(os.environ))


async def health_checks(config: DashboardConfig) -> Dict[str, Dict[str, Any]]:
    """Redis, PostgreSQL, the LLM and TTS, now (infra/health.py), side by side."""
    from actions.llm import get_llm
    from core.config import env
    from infra import health

    redis_url = env("REDIS_URL")
    if config.production and not redis_url:
        from infra.settings import production_env

        redis_url = production_env()["REDIS_URL"]
    checks = await asyncio.gather(
        asyncio.to_thread(health.check_redis, redis_url),
        # infra.health opens SQLite by plain path: the read-only URI form is turned back into one
        asyncio.to_thread(health.check_database, config.read_url.replace("file:", "").split("?")[0]
                          if config.read_url.startswith("sqlite") else config.read_url),
        asyncio.to_thread(health.check_llm, get_llm(), True),
        asyncio.to_thread(health.check_tts),
    )
    return dict(zip(("Redis", "Database", "LLM", "TTS"), checks))


def overview_charts(tables: Dict[str, Any]) -> Dict[str, str]:
    _, daily = tables["daily"]
    _, mc = tables["turns_by_module_channel"]
    _, accuracy = tables["math_accuracy_by_level"]
    modules = sorted({r[0] for r in mc})
    channels = sorted({r[1] for r in mc})
    return {
        "daily": charts.bar_chart("Learners and sessions per day", [r[0][5:] for r in daily],
                                  {"learners": [r[1] for r in daily], "sessions": [r[3] for r in daily]}),
        "modules": charts.bar_chart("Turns per module and channel", modules,
                                    {c: [sum(r[2] for r in mc if r[0] == m and r[1] == c) for m in modules] for c in channels}),
        "accuracy": charts.bar_chart("Math accuracy per level", [f"level {r[0]}" for r in accuracy],
                                     {"accuracy": [r[3] for r in accuracy]}),
    }


def learner_chart(tables: Dict[str, Any]) -> Optional[str]:
    if "activity_by_day" not in tables:
        return None
    _, rows = tables["activity_by_day"]
    days = sorted({r[0] for r in rows})
    modules = sorted({r[1] for r in rows})
    return charts.bar_chart("Turns per day and module", [d[5:] for d in days],
                            {m: [sum(r[2] for r in rows if r[0] == d and r[1] == m) for d in days] for m in modules})

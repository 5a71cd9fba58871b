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
from pathlib import Path
from typing import Any, Dict, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Sanic, response
from sanic.request import Request

from dashboard import accounts, charts, db
from dashboard.config import DashboardConfig
from dashboard.queries import Queries, in_thread, to_csv
from dashboard.security import COOKIE, Sessions, csrf_ok

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
TABLE_TITLES = {
    "summary": "Headline numbers", "daily": "Per day (Kigali time)", "turns_by_module_channel": "Turns per module and channel",
    "math_accuracy_by_level": "Math accuracy per level (graded answers)", "math_level_moves": "Learners moving up or down a math level",
    "math_progress_by_level": "Math learners per current level (progress store)", "latency_by_channel": "Turn latency per channel",
    "roster": "Learners", "classes": "Classes", "progress": "Progress per module", "activity_by_day": "Activity per day and module",
    "recent_sessions": "Recent sessions",
}


def create_app(config: DashboardConfig, name: str = "bakame_dashboard") -> Sanic:
    app = Sanic(name)
    app.config.FORWARDED_SECRET = os.environ.get("DASHBOARD_FORWARDED_SECRET")  # behind a proxy: real client IPs
    read, write = db.engine(config.read_url), db.engine(config.write_url)
    queries = Queries(read, days=config.days)
    sessions = Sessions(config.secret_key, secure=config.secure_cookies)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    app.static("/static", str(HERE / "static"), name="static")

    def page(request: Request, template: str, status: int = 200, **values: Any) -> response.HTTPResponse:
        html = templates.get_template(template).render(user=request.ctx.user, csrf=request.ctx.session["csrf"],
                                                       titles=TABLE_TITLES, **values)
        return response.html(html, status=status)

    def forbidden(request: Request) -> response.HTTPResponse:
        return page(request, "error.html", status=403, message="You do not have access to this page.")

    def csv_or_page(request: Request, tables: Dict[str, Any], template: str, **values: Any) -> response.HTTPResponse:
        wanted = request.args.get("csv")
        if wanted:
            if wanted not in tables:
                return page(request, "error.html", status=404, message="No such table.")
            return response.text(to_csv(tables[wanted]), content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{wanted}.csv"'})
        return page(request, template, tables=tables, **values)

    @app.middleware("request")
    async def load_session(request: Request) -> Optional[response.HTTPResponse]:
        session = sessions.load(request.cookies.get(COOKIE))
        request.ctx.new_session = session is None
        request.ctx.session = session or sessions.new()
        username = request.ctx.session.get("u")
        request.ctx.user = await in_thread(accounts.get_user, write, username) if username else None
        if request.method == "POST" and not csrf_ok(request.ctx.session, request.form.get("csrf")):
            return response.text("The form expired or did not come from this dashboard (CSRF check). Reload and retry.",
                                 status=403)
        public = request.path in ("/login", "/healthz") or request.path.startswith("/static/")
        if request.ctx.user is None and not public:
            return response.redirect("/login")
        return None

    @app.middleware("response")
    async def save_session(request: Request, resp: response.HTTPResponse) -> None:
        if getattr(request.ctx, "new_session", False) and COOKIE not in resp.cookies:
            sessions.store(resp, request.ctx.session)
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
        resp.headers.setdefault("Referrer-Policy", "same-origin")

    @app.get("/healthz")
    async def healthz(request: Request) -> response.HTTPResponse:
        return response.json({"status": "ok"})

    @app.get("/login")
    async def login_form(request: Request) -> response.HTTPResponse:
        return page(request, "login.html", error=None)

    @app.post("/login")
    async def login(request: Request) -> response.HTTPResponse:
        client = request.remote_addr or request.ip or "unknown"
        try:
            user = await in_thread(accounts.authenticate, write, request.form.get("username", ""),
                                   request.form.get("password", ""), client)
        except accounts.RateLimited:
            return page(request, "login.html", status=429,
                        error="Too many failed logins. Wait 15 minutes, then try again.")
        if user is None:
            return page(request, "login.html", status=401, error="Wrong username or password.")
        resp = response.redirect("/" if user.role != "teacher" else "/classes")
        sessions.store(resp, sessions.new(user.username))
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> response.HTTPResponse:
        resp = response.redirect("/login")
        sessions.store(resp, sessions.new())
        return resp

    @app.get("/")
    async def overview(request: Request) -> response.HTTPResponse:
        if request.ctx.user.role == "teacher":
            return response.redirect("/classes")
        data = await in_thread(queries.overview)
        health = await health_checks(config)
        return csv_or_page(request, data.tables, "overview.html", missing=data.missing, since=data.since,
                           health=health, charts=await in_thread(overview_charts, data.tables), days=config.days)

    @app.get("/classes")
    async def class_list(request: Request) -> response.HTTPResponse:
        if request.ctx.user.role == "viewer":
            return forbidden(request)
        tables = {"classes": await in_thread(queries.classes_for, request.ctx.user)}
        return csv_or_page(request, tables, "classes.html")

    @app.get("/classes/<code>")
    async def class_page(request: Request, code: str) -> response.HTTPResponse:
        if not await in_thread(queries.can_see_class, request.ctx.user, code):
            return forbidden(request)
        roster, ids = await in_thread(queries.roster, code)
        return csv_or_page(request, {"roster": roster}, "class.html", code=code, ids=ids,
                           name=await in_thread(queries.class_name, code))

    @app.get("/learners/<learner_id>")
    async def learner_page(request: Request, learner_id: str) -> response.HTTPResponse:
        user = request.ctx.user
        if not await in_thread(queries.can_see_learner, user, learner_id):
            return forbidden(request)
        name, tables, missing = await in_thread(queries.learner, learner_id, user.is_admin)
        chart = await in_thread(learner_chart, tables)
        return csv_or_page(request, tables, "learner.html", name=name, learner_id=learner_id, missing=missing,
                           chart=chart, erased=request.args.get("erased"))

    @app.post("/learners/<learner_id>/erase")
    async def erase(request: Request, learner_id: str) -> response.HTTPResponse:
        if not request.ctx.user.is_admin:
            return forbidden(request)
        counts = await erase_learner(learner_id)
        removed = sum(counts.values())
        logger.info("learner erased by %s (%d items)", request.ctx.user.username, removed)
        return page(request, "erased.html", counts=counts)

    return app


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

"""The dashboard (issue 17) without a browser: class codes in the conversation, accounts,
sessions and the web app on the embedded defaults of `make run` (SQLite, no events table).

The browser end-to-end over the production stack is tests/test_dashboard_browser.py.
"""
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from infra import progress_store
from actions.classes import ActionJoinClass
from core.class_codes import class_code_in, normalise_code
from actions.messages import text as message_text
from connectors.keypad import KeypadMenu
from dashboard import accounts, config as dashboard_config, db
from dashboard.queries import pseudonym
from dashboard.security import Sessions, csrf_ok
from tests.stack import ROOT, free_port, wait_for

SECRET = "dashboard-test-secret-key-0123456789abcdef"


# --------------------------------------------------------------------------- class codes
@pytest.mark.parametrize("text, code", [
    ("class 4821", "4821"), ("join class abc12", "ABC12"), ("ishuri 4821", "4821"),
    ("kode y'ishuri ni 60x7", "60X7"), ("my teacher gave me the code 8841 for class", "8841"),
    ("join class", None), ("ishuri ryanjye", None), ("class P", None),
])
def test_the_class_code_is_read_from_what_the_learner_said(text, code):
    assert class_code_in(text) == code


def test_codes_are_normalised_and_words_are_not_codes():
    assert normalise_code(" abc-12 ") == "ABC12"
    assert normalise_code("class") is None and normalise_code("12") is None


def test_keypad_star_8_then_the_code_joins_a_class_even_during_math():
    menu = KeypadMenu()
    for math in (False, True):
        entry = menu.resolve("*84821#", math_active=math)
        assert entry.kind == "class" and entry.text == '/join_class{"class_code": "4821"}'
    assert menu.resolve("4821", math_active=True).kind == "answer"  # digits alone stay the answer


@pytest.fixture
def progress_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'progress.db'}"
    monkeypatch.setenv("PROGRESS_DB_URL", url)
    monkeypatch.setenv("PROGRESS_SPOOL_PATH", str(tmp_path / "queue.sqlite"))
    progress_store.reset_store()
    yield url
    progress_store.reset_store()


def join_tracker(text, language="en", entities=(), sender="tw_learner1", slots=None):
    message = {"text": text, "intent": {"name": "join_class", "confidence": 1.0}, "entities": list(entities)}
    return Tracker(sender_id=sender, slots={"language": language, **(slots or {})}, latest_message=message,
                   events=[{"event": "user", "text": text, "parse_data": message}], paused=False,
                   followup_action=None, active_loop={}, latest_action_name="action_listen")


async def join(text, **kwargs):
    dispatcher = CollectingDispatcher()
    events = await ActionJoinClass().run(dispatcher, join_tracker(text, **kwargs), {})
    return [m["text"] for m in dispatcher.messages], events


def create_class(url, code="4821", name="P5 Blue", teacher="tina"):
    engine = db.engine(dashboard_config.sync_url(url))
    progress_store.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(progress_store.classes.insert().values(code=code, name=name, teacher=teacher))
    engine.dispose()


def members(url, code="4821"):
    engine = db.engine(dashboard_config.sync_url(url))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(progress_store.class_members.c.learner_id)
                                .where(progress_store.class_members.c.class_code == code)).scalars().all()
    finally:
        engine.dispose()


async def test_joining_a_class_records_the_membership_once_in_both_languages(progress_db):
    create_class(progress_db)
    texts, _ = await join("join class 4821")
    assert texts == [message_text("class_joined", "en", name="P5 Blue")]
    texts, _ = await join("ishuri 4821", language="rw")
    assert texts == [message_text("class_already", "rw", name="P5 Blue")]
    texts, _ = await join("/join_class", entities=[{"entity": "class_code", "value": "4821"}], sender="tw_keypad")
    assert texts == [message_text("class_joined", "en", name="P5 Blue")]
    assert sorted(members(progress_db)) == ["tw_keypad", "tw_learner1"]


async def test_an_unknown_or_missing_code_is_explained(progress_db):
    create_class(progress_db)
    assert (await join("class 9999"))[0] == [message_text("class_unknown", "en", code="9999")]
    assert (await join("nshyira mu ishuri", language="rw"))[0] == [message_text("class_ask_code", "rw")]
    assert members(progress_db) == []


async def test_inside_a_module_the_question_is_asked_again(progress_db):
    create_class(progress_db)
    _, events = await join("class 4821", slots={"tutor_state": {"module": "math", "_asked": True}})
    assert events == [{"event": "slot", "timestamp": None, "name": "tutor_state", "value": {"module": "math"}}]


async def test_erasing_a_learner_removes_their_memberships(progress_db):
    create_class(progress_db)
    await join("class 4821")
    assert await progress_store.get_store().classes_of("tw_learner1")
    await progress_store.get_store().forget("tw_learner1")
    assert members(progress_db) == []


# --------------------------------------------------------------------------- accounts
@pytest.fixture
def write_engine(tmp_path):
    cfg = dashboard_config.load(False, {"PROGRESS_DB_URL": f"sqlite:///{tmp_path / 'p.db'}"})
    db.prepare(cfg)
    engine = db.engine(cfg.write_url)
    yield engine
    engine.dispose()


def test_passwords_are_argon2_hashes_and_short_ones_are_refused(write_engine):
    accounts.create_user(write_engine, "ada", "a-long-password", "admin")
    with write_engine.connect() as conn:
        stored = conn.execute(sa.select(db.users.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$") and "a-long-password" not in stored
    with pytest.raises(accounts.AccountError):
        accounts.create_user(write_engine, "bob", "short", "viewer")
    with pytest.raises(accounts.AccountError):
        accounts.create_user(write_engine, "eve", "a-long-password", "root")


def test_a_teacher_gets_the_classes_asked_and_cannot_take_another_teachers(write_engine):
    accounts.create_user(write_engine, "tina", "a-long-password", "teacher", ["4821"], ["P5 Blue"])
    accounts.create_user(write_engine, "tom", "a-long-password", "teacher", [], ["P6"])
    with write_engine.connect() as conn:
        rows = {r.teacher: (r.code, r.name) for r in conn.execute(sa.select(progress_store.classes))}
    assert rows["tina"] == ("4821", "P5 Blue")
    assert re.fullmatch(r"\d{4}", rows["tom"][0]) and rows["tom"][1] == "P6"
    with pytest.raises(accounts.AccountError, match="another teacher"):
        accounts.create_user(write_engine, "tom", "a-long-password", "teacher", ["4821"])


def test_login_is_rate_limited_per_username(write_engine):
    accounts.create_user(write_engine, "tina", "a-long-password", "teacher")
    assert accounts.authenticate(write_engine, "tina", "a-long-password", "1.2.3.4").role == "teacher"
    for _ in range(accounts.MAX_FAILURES_PER_USER):
        assert accounts.authenticate(write_engine, "tina", "wrong-password", "1.2.3.4") is None
    with pytest.raises(accounts.RateLimited):
        accounts.authenticate(write_engine, "tina", "a-long-password", "5.6.7.8")


def test_sessions_are_signed_and_csrf_tokens_compared():
    sessions = Sessions(SECRET)
    session = sessions.new("tina")
    cookie = sessions.serializer.dumps(session)
    assert sessions.load(cookie) == session
    assert sessions.load(cookie[:-2] + "xx") is None
    assert Sessions("another-secret-key-0123456789abcdef").load(cookie) is None
    assert csrf_ok(session, session["csrf"]) and not csrf_ok(session, "forged") and not csrf_ok(session, None)


def test_production_start_refuses_a_missing_short_or_placeholder_key():
    for value in ("", "short", "change-me"):
        with pytest.raises(SystemExit, match="DASHBOARD_SECRET_KEY"):
            dashboard_config.load(True, {"DASHBOARD_SECRET_KEY": value})
    assert dashboard_config.load(True, {"DASHBOARD_SECRET_KEY": SECRET}).secret_key == SECRET


def test_make_dashboard_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(BAKAME_ENV_FILE=str(tmp_path / "none.env"), PROGRESS_DB_URL=f"sqlite:///{tmp_path / 'p.db'}")
    result = subprocess.run([str(ROOT / "scripts" / "dashboard.sh"), "serve"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Refusing to start in production: DASHBOARD_SECRET_KEY is not set" in result.stdout + result.stderr
    assert not (tmp_path / "p.db").exists()  # refused before touching anything


def test_pseudonyms_are_stable_and_say_nothing_of_the_id():
    name = pseudonym("tw_0123456789abcdef")
    assert name == pseudonym("tw_0123456789abcdef") != pseudonym("tw_fedcba9876543210")
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,2}", name)


# --------------------------------------------------------------------------- the web app
class Dashboard:
    """`python -m dashboard serve --local` as `make dashboard-local` runs it."""

    def __init__(self, workdir: Path, env: dict) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "DASHBOARD_PORT": str(self.port), "PYTHONPATH": str(ROOT)}
        self.log = workdir / "dashboard.log"
        self.process = None

    def cli(self, *args: str, password: str = "a-long-password") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, capture_output=True, text=True,
                              env={**self.env, "DASHBOARD_PASSWORD": password}, timeout=300, stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> "Dashboard":
        self.process = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", *args], cwd=ROOT, env=self.env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for(f"{self.url}/healthz", self.process, self.log)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def login(self, username: str, password: str = "a-long-password") -> requests.Session:
        client = requests.Session()
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"{self.url}/login").text).group(1)
        response = client.post(f"{self.url}/login", data={"csrf": csrf, "username": username, "password": password},
                               allow_redirects=False)
        assert response.status_code == 302, response.text
        return client


@pytest.fixture(scope="module")
def local_dashboard(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{workdir / 'progress.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "DATABASE_", "PROGRESS_", "REDIS_"))}
    env.update(PROGRESS_DB_URL=url, PROGRESS_SPOOL_PATH=str(workdir / "queue.sqlite"))
    dashboard = Dashboard(workdir, env)
    for args in (["tina", "--role", "teacher", "--class-code", "4821", "--class-name", "P5 Blue"],
                 ["tom", "--role", "teacher", "--class-code", "7310"], ["vera", "--role", "viewer"],
                 ["ada", "--role", "admin"]):
        result = dashboard.cli("user", "--local", *args)
        assert result.returncode == 0, result.stderr
    # a learner in tina's class, written as the action server writes it
    store = progress_store.ProgressStore(url, spool_path=str(workdir / "queue2.sqlite"))

    async def learner():
        await store.join_class("tw_aaaa1111", "4821")
        await store.save_profile("tw_aaaa1111", name="Aline", language="en")
        await store.dispose()

    asyncio.run(learner())
    dashboard.start("--local")
    yield dashboard
    dashboard.stop()


def test_no_user_no_page_and_no_default_account(local_dashboard):
    response = requests.get(f"{local_dashboard.url}/classes", allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    result = local_dashboard.cli("user", "--local", "newbie", "--role", "viewer", password="")
    assert result.returncode != 0 and "no default password" in (result.stdout + result.stderr)


def test_a_post_without_the_csrf_token_is_refused(local_dashboard):
    client = requests.Session()
    client.get(f"{local_dashboard.url}/login")
    response = client.post(f"{local_dashboard.url}/login", data={"username": "tina", "password": "a-long-password"})
    assert response.status_code == 403
    assert "bakame_dashboard" not in response.headers.get("Set-Cookie", "")  # no session was made


def test_the_session_cookie_is_httponly_and_samesite(local_dashboard):
    response = requests.get(f"{local_dashboard.url}/login")
    cookie = response.headers["Set-Cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_a_teacher_sees_their_class_only(local_dashboard):
    tina = local_dashboard.login("tina")
    page = tina.get(f"{local_dashboard.url}/classes/4821")
    assert page.status_code == 200 and "Aline" in page.text and "tw_aaaa1111" in page.text  # link, not shown as name
    assert tina.get(f"{local_dashboard.url}/classes/7310").status_code == 403
    assert tina.get(f"{local_dashboard.url}/learners/tw_aaaa1111").status_code == 200
    assert local_dashboard.login("tom").get(f"{local_dashboard.url}/learners/tw_aaaa1111").status_code == 403
    csv_text = tina.get(f"{local_dashboard.url}/classes/4821", params={"csv": "roster"}).text
    assert csv_text.splitlines()[0].startswith("learner,joined,last_seen") and "Aline" in csv_text
    assert "tw_aaaa1111" not in csv_text


def test_a_viewer_sees_aggregates_only_and_is_told_what_is_missing(local_dashboard):
    vera = local_dashboard.login("vera")
    overview = vera.get(f"{local_dashboard.url}/")
    assert overview.status_code == 200 and "no events table" in overview.text and "data:image/svg+xml;base64," in overview.text
    assert vera.get(f"{local_dashboard.url}/classes").status_code == 403
    assert vera.get(f"{local_dashboard.url}/learners/tw_aaaa1111").status_code == 403
    assert vera.get(f"{local_dashboard.url}/", params={"csv": "summary"}).text.startswith("metric,value")


def test_the_read_connection_cannot_write(local_dashboard, tmp_path):
    cfg = dashboard_config.load(False, local_dashboard.env)
    engine = db.engine(cfg.read_url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            with engine.begin() as conn:
                conn.execute(progress_store.class_members.delete())
    finally:
        engine.dispose()

"""The dashboard in a real headless browser (Debian's chromium driven by Selenium through
/usr/bin/chromedriver) over the real production stack (issue 17).

One stack for the whole module: private Redis and PostgreSQL (tests/services.py), the action
server and Rasa with the production endpoints (events in PostgreSQL), then the dashboard as
`make dashboard` serves it (production mode: secret key, read-only role). A learner talks to
the assistant over REST, joins a class by its code and does math; then in the browser:

* the teacher logs in, sees the learner's progress, gets 403 on another class, downloads CSV;
* the admin sees the overview (events counted, live health) and erases the learner, who is
  then gone from every table.

``DASHBOARD_SCREENSHOTS=docs/img`` saves the main pages' screenshots there (docs/dashboard.md).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from actions.messages import text as message_text
from tests.services import LocalPostgres, RedisServer
from tests.stack import ensure_model
from tests.test_dashboard import Dashboard
from tests.test_production_stack import ProductionStack

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SECRET = "browser-test-dashboard-secret-0123456789abcdef"
PASSWORD = "a-long-password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    redis_server, pg = RedisServer(), LocalPostgres(database="bakame")
    redis_server.start()
    pg.start()
    ensure_model()
    prod = ProductionStack(tmp_path_factory.mktemp("dashboard-prod"), redis_server, pg)
    try:
        yield prod.start()
    finally:
        prod.stop()
        redis_server.remove()
        pg.remove()


@pytest.fixture(scope="module")
def dashboard(stack, tmp_path_factory):
    env = {k: v for k, v in stack.a.env.items() if not k.startswith("DASHBOARD_")}
    board = Dashboard(tmp_path_factory.mktemp("dashboard"), {**env, "DASHBOARD_SECRET_KEY": SECRET})
    for args in (["tina", "--role", "teacher", "--class-code", "4821", "--class-name", "P5 Blue"],
                 ["tom", "--role", "teacher", "--class-code", "7310", "--class-name", "P6 Green"],
                 ["ada", "--role", "admin"]):
        result = board.cli("user", *args, password=PASSWORD)
        assert result.returncode == 0, result.stderr
    board.start()
    yield board
    board.stop()


@pytest.fixture(scope="module")
def learner(stack, dashboard):
    """A real conversation: onboarding, joining class 4821 by its code, one right math answer."""
    sender = f"rest-{uuid.uuid4().hex[:12]}"
    stack.a.texts(sender, "hello")
    stack.a.texts(sender, "my name is Aline")
    assert stack.a.texts(sender, "class 4821") == [message_text("class_joined", "en", name="P5 Blue")]
    stack.a.texts(sender, "math")
    answer = stack.a.tracker(sender)["slots"]["tutor_state"]["problem"]["answer"]
    stack.a.texts(sender, str(answer))
    question = stack.a.tracker(sender)["slots"]["tutor_state"]["problem"]
    replies = stack.a.texts(sender, "ishuri 4821")  # inside the module: already in, then the question again
    assert replies[0] == message_text("class_already", "en", name="P5 Blue"), replies
    assert len(replies) == 2 and stack.a.tracker(sender)["slots"]["tutor_state"]["problem"] == question
    stack.wait_synced(sender)
    return sender


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are not installed (make test installs them: scripts/install_system_packages.sh)")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900",
                     "--disable-gpu", "--no-first-run"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    driver.downloads = downloads
    yield driver
    driver.quit()


def log_in(driver, dashboard, username):
    driver.delete_all_cookies()
    driver.get(f"{dashboard.url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 60).until(lambda d: not d.current_url.endswith("/login"))  # logged in, page loaded


def screenshot(driver, name):
    target = os.environ.get("DASHBOARD_SCREENSHOTS")
    if not target:
        return
    from PIL import Image

    path = Path(target) / f"dashboard-{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)  # small files for the docs


def wait_for_file(path: Path, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and not list(path.parent.glob("*.crdownload")):
            return path
        time.sleep(0.2)
    raise AssertionError(f"{path.name} was not downloaded")


def rows_of(pg_url, sender):
    conn = psycopg2.connect(pg_url, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            counts = {}
            for table, column in (("events", "sender_id"), ("learner_progress", "learner_id"),
                                  ("learner_profile", "learner_id"), ("class_members", "learner_id")):
                cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = %s", (sender,))
                counts[table] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


def test_teacher_sees_the_learner_who_joined_by_code(browser, dashboard, learner):
    log_in(browser, dashboard, "tina")
    assert browser.current_url.endswith("/classes")
    browser.find_element(By.LINK_TEXT, "4821").click()
    roster = browser.find_element(By.ID, "roster").text
    assert "Aline" in roster and "math" in roster and learner not in roster
    screenshot(browser, "class")
    browser.find_element(By.LINK_TEXT, "Aline").click()
    progress = browser.find_element(By.ID, "progress").text
    assert "math" in progress and "1" in progress
    assert "4821" in browser.find_element(By.ID, "classes").text
    sessions = browser.find_element(By.ID, "recent_sessions").text
    assert "my name is Aline" not in sessions  # turn texts are for admins only
    assert not browser.find_elements(By.ID, "erase")
    screenshot(browser, "learner-teacher")


def test_teacher_gets_403_on_another_class_and_its_learners(browser, dashboard, learner):
    log_in(browser, dashboard, "tom")
    browser.get(f"{dashboard.url}/learners/{learner}")
    assert "You do not have access" in browser.find_element(By.TAG_NAME, "h1").text
    log_in(browser, dashboard, "tina")
    browser.get(f"{dashboard.url}/classes/7310")
    assert "You do not have access" in browser.find_element(By.TAG_NAME, "h1").text
    status = browser.execute_script("return fetch('/classes/7310').then(r => r.status)")
    assert status == 403


def test_teacher_downloads_the_class_as_csv(browser, dashboard, learner):
    log_in(browser, dashboard, "tina")
    browser.get(f"{dashboard.url}/classes/4821")
    browser.find_element(By.CSS_SELECTOR, "#roster a.csv").click()
    content = wait_for_file(browser.downloads / "roster.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [r["learner"] for r in rows] == ["Aline"]
    assert rows[0]["modules"] == "math" and rows[0]["math_level"] == "1" and rows[0]["practised_this_week"] == "yes"
    assert learner not in content


def test_the_dashboard_reads_learner_data_through_a_read_only_role(stack, dashboard, learner):
    conn = psycopg2.connect(stack.pg.url.replace("postgres@", "bakame_dashboard_ro@"), connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM events WHERE sender_id = %s", (learner,))
            assert cur.fetchone()[0] > 0
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("DELETE FROM learner_progress")
    finally:
        conn.close()


def test_admin_sees_the_overview_and_erases_the_learner(browser, dashboard, learner, stack):
    log_in(browser, dashboard, "ada")
    summary = {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
               for row in browser.find_elements(By.CSS_SELECTOR, "#summary tbody tr")}
    assert int(summary["turns"]) >= 6 and int(summary["math_graded_answers"]) >= 1
    health = browser.find_element(By.ID, "health").text
    assert "Redis ok" in health and "Database ok" in health and "LLM disabled" in health
    charts = browser.execute_script("return [...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert charts == [True, True, True]  # the server-drawn charts load (no CDN, no script)
    screenshot(browser, "overview")

    browser.get(f"{dashboard.url}/learners/{learner}")
    assert "class 4821" in browser.find_element(By.ID, "recent_sessions").text  # admins see the texts
    screenshot(browser, "learner-admin")
    before = rows_of(stack.pg.url, learner)
    assert before["events"] > 0 and before["class_members"] == 1 and before["learner_progress"] >= 1
    browser.find_element(By.ID, "confirm-erase").click()
    browser.find_element(By.ID, "erase").click()
    erased = browser.find_element(By.ID, "erased").text
    assert f"events (PostgreSQL) {before['events']}" in erased
    assert rows_of(stack.pg.url, learner) == {"events": 0, "learner_progress": 0, "learner_profile": 0,
                                               "class_members": 0}
    browser.get(f"{dashboard.url}/classes/4821")
    assert "No learner has joined yet" in browser.find_element(By.ID, "roster").text

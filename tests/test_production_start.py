"""Production starts are secure by default (issue 11): no start without the secrets, forged
Twilio requests 403, the HTTP API and the REST channel behind the token, the action server
on the loopback address only, no password printed by `make prod-env`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from twilio.request_validator import RequestValidator

from infra import settings
from tests.connector_fixtures import call_params, sms_params
from tests.services import LocalPostgres, RedisServer
from tests.stack import ROOT, ensure_model, free_port, stack_env, wait_for

TWILIO_TOKEN = "start-test-twilio-auth-token-0123456789"
API_TOKEN = "start-test-api-token-0123456789abcdef"
SECRETS = {"TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "SENDER_ID_SECRET": "start-test-sender-secret-0123456789",
           "RASA_AUTH_TOKEN": API_TOKEN}
PUBLIC = "https://bakame-start-test.invalid"


def _without_secrets(env):
    env = dict(env)
    for name in (*settings.PRODUCTION_SECRETS, "TWILIO_VALIDATE_SIGNATURE", "REST_CHANNEL_TOKEN"):
        env.pop(name, None)
    env["BAKAME_ENV_FILE"] = "/nonexistent/.env"  # a developer's own .env must not answer for the test
    return env


# ------------------------------------------------------------------ what is refused
def test_every_missing_or_placeholder_secret_is_named():
    assert settings.secret_problems({}) == [
        "TWILIO_AUTH_TOKEN is not set", "SENDER_ID_SECRET is not set", "RASA_AUTH_TOKEN is not set"]
    assert settings.secret_problems({**SECRETS}) == []
    assert settings.secret_problems({**SECRETS, "RASA_AUTH_TOKEN": "   "}) == ["RASA_AUTH_TOKEN is not set"]
    assert settings.secret_problems({**SECRETS, "SENDER_ID_SECRET": "short-key"}) == [
        "SENDER_ID_SECRET is shorter than 16 characters"]
    assert settings.secret_problems({**SECRETS, "TWILIO_VALIDATE_SIGNATURE": "false"}) == [
        "TWILIO_VALIDATE_SIGNATURE=false is allowed only for `make run`"]
    # the development sender-id key is never a production key
    from connectors.security import DEV_SENDER_ID_SECRET
    assert settings.secret_problems({**SECRETS, "SENDER_ID_SECRET": DEV_SENDER_ID_SECRET}) == [
        "SENDER_ID_SECRET is still a placeholder"]


def test_every_placeholder_of_env_example_is_refused():
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            example[name.strip()] = value.strip()
    for name in settings.PRODUCTION_SECRETS:
        assert name in example, f".env.example must list {name}"
        problems = settings.secret_problems({**SECRETS, name: example[name]})
        assert problems and problems[0].startswith(name), (name, problems)


def _settings_cli(*args, env):
    return subprocess.run([sys.executable, "-m", "infra.settings", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_and_exec_refuse_with_one_line_and_never_run_the_command(tmp_path):
    env = _without_secrets(stack_env(tmp_path))
    marker = tmp_path / "ran"
    for args in (["check"], ["exec", "--", "python", "-m", "infra.rasa_main", "run", "--touch", str(marker)]):
        result = _settings_cli(*args, env=env)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        for name in settings.PRODUCTION_SECRETS:
            assert name in lines[0]
    # the action server needs none of them (compose's `actions` service has none)
    result = _settings_cli("exec", "--", sys.executable, "-m", "rasa_sdk", "--help", env=env)
    assert "Refusing" not in result.stderr
    assert _settings_cli("check", env={**env, **SECRETS}).returncode == 0


def test_prod_env_masks_passwords_unless_asked_to_reveal(tmp_path):
    env = stack_env(tmp_path, REDIS_URL="redis://:redis-pass-123@cache:6379/0",
                    DATABASE_URL="postgresql://bakame:pg-pass-456@db:5432/bakame")
    masked = _settings_cli(env=env)
    assert masked.returncode == 0
    assert "redis-pass-123" not in masked.stdout and "pg-pass-456" not in masked.stdout
    assert "REDIS_PASSWORD='****'" in masked.stdout or "REDIS_PASSWORD=****" in masked.stdout
    assert "postgresql://bakame:****@db:5432/bakame" in masked.stdout
    revealed = _settings_cli("export", "--reveal", env=env)
    assert "redis-pass-123" in revealed.stdout and "pg-pass-456" in revealed.stdout


def test_production_channels_refuse_to_start_without_their_secrets(monkeypatch):
    from rasa.shared.exceptions import InvalidConfigException

    from connectors.twilio_sms import TwilioSmsInput
    from connectors.twilio_voice import TwilioVoiceInput
    from infra.rest_channel import ResilientRestInput

    for name in (*settings.PRODUCTION_SECRETS, "REST_CHANNEL_TOKEN", "TWILIO_VALIDATE_SIGNATURE"):
        monkeypatch.delenv(name, raising=False)
    prod = {"production": True, "timing_instrumentation": False}
    for channel in (TwilioVoiceInput, TwilioSmsInput):
        with pytest.raises(InvalidConfigException, match="TWILIO_AUTH_TOKEN is not set"):
            channel.from_credentials(prod)
    with pytest.raises(InvalidConfigException, match="token"):
        ResilientRestInput.from_credentials({"require_token": True})
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("SENDER_ID_SECRET", SECRETS["SENDER_ID_SECRET"])
    monkeypatch.setenv("TWILIO_VALIDATE_SIGNATURE", "false")
    with pytest.raises(InvalidConfigException, match="TWILIO_VALIDATE_SIGNATURE=false"):
        TwilioSmsInput.from_credentials(prod)
    monkeypatch.delenv("TWILIO_VALIDATE_SIGNATURE")
    assert TwilioSmsInput.from_credentials(prod).auth.validate is True
    # the development file keeps its relaxations (make run)
    assert TwilioSmsInput.from_credentials({"timing_instrumentation": False}).name() == "twilio_sms"


# ------------------------------------------------------------------ make run-prod, for real
def _run_prod(env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(["make", "--no-print-directory", "run-prod"], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.e2e
def test_make_run_prod_without_secrets_exits_at_once_with_one_clear_line(tmp_path):
    env = _without_secrets(stack_env(tmp_path, RASA_PORT=str(free_port()), ACTIONS_PORT=str(free_port())))
    result = subprocess.run(["make", "--no-print-directory", "run-prod"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    refusal = [line for line in result.stderr.splitlines() if line.startswith("Refusing to start in production")]
    assert len(refusal) == 1, result.stderr
    assert all(name in refusal[0] for name in settings.PRODUCTION_SECRETS)
    assert "Training" not in result.stdout  # refused before any work


def _listening_addresses(port: int):
    """Local addresses listening on ``port`` (from /proc/net/tcp*, hex little-endian)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


@pytest.fixture(scope="module")
def prod_start(tmp_path_factory):
    ensure_model()
    workdir = tmp_path_factory.mktemp("runprod")
    redis_server, pg = RedisServer(), LocalPostgres(database="bakame")
    redis_server.start()
    pg.start()
    rasa_port, actions_port = free_port(), free_port()
    env = stack_env(workdir, RASA_PORT=str(rasa_port), ACTIONS_PORT=str(actions_port), REDIS_URL=redis_server.url,
                    DATABASE_URL=pg.url, PROGRESS_DB_URL=pg.url, PUBLIC_BASE_URL=PUBLIC,
                    EVENT_SPOOL_PATH=str(workdir / "spool.sqlite"), **SECRETS)
    env = {**_without_secrets(env), **SECRETS}
    log = workdir / "run-prod.log"
    process = _run_prod(env, log)
    url = f"http://127.0.0.1:{rasa_port}"
    try:
        wait_for(f"{url}/status?token={API_TOKEN}", process, log, timeout=300,
                 ok=lambda r: r.ok and r.json().get("model_file"))
        yield {"url": url, "actions_port": actions_port, "log": log}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        redis_server.remove()
        pg.remove()


def _twilio_post(url: str, path: str, params, signature=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return requests.post(url + path, data=urlencode(params), headers=headers, timeout=120)


@pytest.mark.e2e
@pytest.mark.integration
def test_make_run_prod_refuses_forged_twilio_requests(prod_start):
    url = prod_start["url"]
    forged = 0
    for path, params in (("/webhooks/twilio_voice/webhook", call_params()),
                         ("/webhooks/twilio_sms/webhook", sms_params("muraho"))):
        wrong_token = RequestValidator("not-the-account-token").compute_signature(PUBLIC + path, params)
        for signature in (None, "garbage-signature=", wrong_token):
            response = _twilio_post(url, path, params, signature)
            assert response.status_code == 403, (path, signature, response.text)
            forged += 1
        good = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
        response = _twilio_post(url, path, params, good)
        assert response.status_code == 200 and "<Response>" in response.text, response.text
    assert forged == 6


@pytest.mark.e2e
@pytest.mark.integration
def test_make_run_prod_keeps_the_api_and_the_rest_channel_behind_the_token(prod_start):
    url = prod_start["url"]
    assert requests.get(f"{url}/conversations/someone/tracker", timeout=30).status_code in (401, 403)
    assert requests.get(f"{url}/conversations/someone/tracker?token=wrong", timeout=30).status_code in (401, 403)
    assert requests.post(f"{url}/model/parse", json={"text": "hi"}, timeout=30).status_code in (401, 403)
    assert requests.get(f"{url}/conversations/someone/tracker?token={API_TOKEN}", timeout=30).status_code == 200

    body = {"sender": "rest-learner-1", "message": "muraho"}
    assert requests.post(f"{url}/webhooks/rest/webhook", json=body, timeout=60).status_code == 401
    assert requests.post(f"{url}/webhooks/rest/webhook?token=wrong", json=body, timeout=60).status_code == 401
    ok = requests.post(f"{url}/webhooks/rest/webhook", json=body, timeout=120,
                       headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert ok.status_code == 200 and ok.json(), ok.text
    # the refused messages never reached the assistant: one learner turn only
    tracker = requests.get(f"{url}/conversations/rest-learner-1/tracker?token={API_TOKEN}", timeout=30).json()
    assert [e.get("text") for e in tracker["events"] if e["event"] == "user"] == ["muraho"]


@pytest.mark.e2e
@pytest.mark.integration
def test_make_run_prod_binds_the_action_server_to_loopback_and_logs_no_secret(prod_start):
    addresses = _listening_addresses(prod_start["actions_port"])
    assert addresses == {"0100007F"}, addresses  # 127.0.0.1 only
    assert requests.get(f"http://127.0.0.1:{prod_start['actions_port']}/health", timeout=10).ok
    logs = prod_start["log"].read_text() + "".join(
        p.read_text(errors="replace") for p in (ROOT / "logs").glob("actions.log"))
    for value in SECRETS.values():
        assert value not in logs

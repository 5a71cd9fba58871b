"""docker-compose.yml, Dockerfile, .env.example, endpoints.prod.yml, credentials.prod.yml,
deploy/nginx/bakame.conf: structure and consistency (no Docker engine runs here).

Every service has a health check and starts after what it needs is healthy; Redis keeps
an append-only file, PostgreSQL a volume; every image, command, file, module and ${VAR}
the compose file names exists in the project (commands are parsed by Rasa's own CLI).
"""
import fnmatch
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
RASA_SERVICES = ("rasa-1", "rasa-2", "rasa-3")  # behind nginx (docs/scaling.md)
NGINX_CONF = ROOT / "deploy" / "nginx" / "bakame.conf"
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example():
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value, env):
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR:?error} with the .env.example values."""
    def replace(match):
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name, "")
        if op in (":-", "-") and not current:
            return arg
        return current

    if isinstance(value, str):
        return VAR.sub(replace, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def dockerfile_instructions():
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


# --------------------------------------------------------------------------- services
def test_the_services(compose):
    assert set(compose["services"]) == {*RASA_SERVICES, "nginx", "actions", "redis", "postgres", "dashboard"}


def test_the_dashboard_needs_its_secret_and_publishes_none(compose):
    dashboard = compose["services"]["dashboard"]
    assert dashboard["environment"]["DASHBOARD_SECRET_KEY"].startswith("${DASHBOARD_SECRET_KEY:?")
    assert dashboard["command"][:3] == ["python", "-m", "dashboard"]
    # it needs no Twilio or Rasa secret: a leaked dashboard container cannot reach them
    assert not {"TWILIO_AUTH_TOKEN", "RASA_AUTH_TOKEN", "SENDER_ID_SECRET"} & set(dashboard["environment"])


def test_every_service_has_a_health_check(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name} healthcheck lacks {key}"


def test_start_order_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    expected = {**{name: {"redis", "postgres", "actions"} for name in RASA_SERVICES},
                "actions": {"postgres", "redis"}, "nginx": set(RASA_SERVICES)}
    for name, needs in expected.items():
        depends = services[name]["depends_on"]
        assert set(depends) == needs, name
        for dependency, condition in depends.items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    for name in ("redis", "postgres"):
        assert "depends_on" not in services[name]


def test_redis_persists_with_an_append_only_file(compose):
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, target = redis["volumes"][0].split(":")
    assert target == "/data" and volume in compose["volumes"]


def test_postgres_keeps_its_data_in_a_volume(compose):
    postgres = compose["services"]["postgres"]
    volume, target = postgres["volumes"][0].split(":")
    assert target == "/var/lib/postgresql/data" and volume in compose["volumes"]
    env = postgres["environment"]
    assert env["POSTGRES_DB"] == compose["services"]["rasa-1"]["environment"]["POSTGRES_DB"]
    assert env["POSTGRES_USER"] == compose["services"]["rasa-1"]["environment"]["POSTGRES_USER"]


def test_event_spool_survives_a_container_restart_one_file_per_process(compose):
    spools = []
    for name in (*RASA_SERVICES, "dashboard"):
        service = compose["services"][name]
        volume, target = service["volumes"][0].split(":")
        assert volume == "event-spool" and volume in compose["volumes"]
        spool = Path(service["environment"]["EVENT_SPOOL_PATH"])
        assert spool.parent == Path(target)
        spools.append(spool)
    assert len(set(spools[:-1])) == len(RASA_SERVICES)  # each process flushes its own spool
    # the dashboard's erase (infra/learner_data.py) reaches every process's spool file
    from infra.learner_data import spool_glob

    assert all(fnmatch.fnmatch(spool.name, spool_glob(spools[-1])) for spool in spools)


def test_restart_policy(compose):
    for name, service in compose["services"].items():
        assert service.get("restart") == "unless-stopped", name


# --------------------------------------------------------------------------- the load balancer
def nginx_directives(name):
    """Arguments of every ``name ...;`` directive of deploy/nginx/bakame.conf (comments out)."""
    text = "\n".join(line.split("#", 1)[0] for line in NGINX_CONF.read_text().splitlines())
    return [args.split() for args in re.findall(rf"(?:^|[;{{}}])\s*{name}\s+([^;{{}}]*);", text, re.M)]


def test_nginx_publishes_the_rasa_port_and_runs_the_repository_config(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"nginx", "dashboard"}  # no Rasa process is reached but through nginx
    nginx = compose["services"]["nginx"]
    assert nginx["ports"] == ["${RASA_PORT:-5005}:80"]
    source, target, mode = nginx["volumes"][0].split(":")
    assert (ROOT / source).resolve() == NGINX_CONF and target == "/etc/nginx/conf.d/default.conf" and mode == "ro"
    assert nginx["healthcheck"]["test"][-1] == "http://127.0.0.1/lb-health"
    assert nginx_directives("listen") == [["80"]]
    assert "location = /lb-health" in NGINX_CONF.read_text()


def test_nginx_upstream_is_every_rasa_process(compose):
    servers = [args[0] for args in nginx_directives("server")]
    assert servers == [f"{name}:5005" for name in RASA_SERVICES]
    assert all(int(compose["services"][name]["command"][compose["services"][name]["command"].index("--port") + 1])
               == 5005 for name in RASA_SERVICES)
    assert nginx_directives("proxy_pass") == [["http://bakame_rasa"]]
    assert nginx_directives("upstream") == [] and "upstream bakame_rasa {" in NGINX_CONF.read_text()


def test_nginx_never_resends_a_turn_and_never_logs_the_token():
    retry = nginx_directives("proxy_next_upstream")
    assert retry == [["error", "timeout"]]  # no non_idempotent: a POST a process may have started is not resent
    log_format = NGINX_CONF.read_text().split("log_format", 1)[1].split(";", 1)[0]
    assert "$uri" in log_format and "$request " not in log_format and "$args" not in log_format
    assert "$upstream_addr" in log_format  # which process answered (the scale test counts them)
    headers = {args[0] for args in nginx_directives("proxy_set_header")}
    assert {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "Host"} <= headers


def test_nginx_accepts_the_config():
    """``nginx -t`` on the very file, its upstreams made local (tests/scale_stack.py)."""
    from tests.scale_stack import Nginx

    server = Nginx([5005, 5006, 5007])
    try:
        main = server.write_config()
        result = subprocess.run([server.binary, "-p", str(server.dir), "-c", str(main), "-e",
                                 str(server.dir / "error.log"), "-t"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        server.remove()


def test_behind_nginx_the_proxies_are_trusted(compose, env_example):
    for name in RASA_SERVICES:
        for env in ({}, env_example):  # compose's default and what .env.example sets
            environment = interpolate(compose["services"][name]["environment"], env)
            assert environment["API_TRUSTED_PROXIES"] == "1"  # the client address nginx appended
            assert environment["AT_TRUST_PROXY"] == "true"


# --------------------------------------------------------------------------- variables
def test_every_variable_is_in_env_example(env_example):
    used = {m.group(1) for m in VAR.finditer(COMPOSE.read_text())}
    assert used, "compose uses no variables?"
    missing = used - set(env_example)
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_required_variables_stop_compose_when_empty():
    text = COMPOSE.read_text()
    for name in ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "SENDER_ID_SECRET", "RASA_AUTH_TOKEN"):
        assert re.search(r"\$\{" + name + r":\?", text), f"{name} should be required (${{{name}:?...}})"


def test_the_app_environment_gives_every_endpoint_variable(compose, env_example):
    for name in (*RASA_SERVICES, "actions"):
        environment = {k: str(v) for k, v in interpolate(compose["services"][name]["environment"], env_example).items()}
        derived = settings.production_env(environment)
        assert set(settings.ENDPOINT_VARIABLES) <= set(derived)
        assert derived["REDIS_HOST"] == "redis" and derived["POSTGRES_HOST"] == "postgres"
        assert derived["ACTION_ENDPOINT_URL"] == "http://actions:5055/webhook"
        assert derived["DATABASE_URL"] == "postgresql://bakame:change-me@postgres:5432/bakame"
        assert derived["REDIS_URL"] == "redis://:change-me@redis:6379/0"


# --------------------------------------------------------------------------- images
def test_app_services_build_the_project_image(compose):
    for name in (*RASA_SERVICES, "actions"):
        service = compose["services"][name]
        assert service["build"] == "." and DOCKERFILE.exists()
        assert service["image"] == compose["services"]["actions"]["image"]


def test_external_images_are_pinned(compose):
    for name in ("redis", "postgres", "nginx"):
        image = compose["services"][name]["image"]
        repository, _, tag = image.partition(":")
        assert repository == name and tag and tag != "latest" and tag[0].isdigit(), image


def test_dockerfile_builds_from_the_lock_file_on_python_310():
    instructions = dockerfile_instructions()
    froms = [i.split()[1] for i in instructions if i.startswith("FROM ")]
    assert froms and all(image == "python:3.10-slim" for image in froms)
    text = " ".join(instructions)
    assert "pip install --quiet -r requirements.lock" in text and (ROOT / "requirements.lock").exists()
    assert "scripts/train_if_needed.sh" in text  # models/bakame.tar.gz is built into the image
    assert "USER bakame" in instructions


def test_dockerfile_copies_exist_and_cover_what_runs():
    copied = []
    for instruction in dockerfile_instructions():
        if instruction.startswith("COPY ") and "--from=" not in instruction:
            sources = shlex.split(instruction)[1:-1]
            copied += sources
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    for needed in ("core", "actions", "connectors", "infra", "scripts", "data", "domain.yml", "config.yml",
                   "endpoints.prod.yml", "credentials.prod.yml", "requirements.lock"):
        assert needed in copied, f"the image lacks {needed}"


def test_dockerfile_entrypoint_is_the_settings_module():
    entry = next(i for i in dockerfile_instructions() if i.startswith("ENTRYPOINT"))
    assert '"-m", "infra.settings", "exec", "--"' in entry
    assert (ROOT / "infra" / "settings.py").exists()


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", ".git", "models", ".spool"} <= ignored
    for needed in ("core", "actions", "connectors", "infra", "scripts", "data", "requirements.lock"):
        assert needed not in ignored


# --------------------------------------------------------------------------- commands
def _rasa_parser():
    from rasa.__main__ import create_argument_parser

    return create_argument_parser()


def test_rasa_command_is_valid_for_rasas_cli(compose, env_example):
    commands = [compose["services"][name]["command"] for name in RASA_SERVICES]
    assert all(command == commands[0] for command in commands)
    command = interpolate(commands[0], env_example)
    assert command[:4] == ["python", "-m", "infra.rasa_main", "run"]  # the launcher: Rasa with its patches
    args = _rasa_parser().parse_args(command[3:])
    assert args.enable_api and args.auth_token == env_example["RASA_AUTH_TOKEN"]
    assert (ROOT / args.credentials).exists() and args.credentials == "credentials.prod.yml"
    assert (ROOT / args.endpoints).exists() and args.endpoints == "endpoints.prod.yml"
    assert args.model == "models/bakame.tar.gz"  # trained into the image (Dockerfile)
    assert (ROOT / "infra" / "rasa_main.py").exists()


def test_actions_command_is_valid_for_rasas_cli(compose):
    command = compose["services"]["actions"]["command"]
    args = _rasa_parser().parse_args(command[1:])
    assert args.actions == "actions" and (ROOT / "actions" / "__init__.py").exists()
    assert int(args.port) == 5055
    assert compose["services"]["rasa-1"]["environment"]["ACTION_ENDPOINT_URL"].endswith(":5055/webhook")


def test_health_check_commands_run(compose):
    for name in ("rasa-1", "actions"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "scripts/healthcheck.py"], name
        assert (ROOT / test[2]).exists()
        # Against nothing: the script runs, parses its arguments and reports "down" (exit 1).
        result = subprocess.run(
            [sys.executable, *test[2:], "--url", "http://127.0.0.1:9"], capture_output=True, text=True,
            timeout=120, cwd=ROOT, env={**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0",
                                        "DATABASE_URL": "postgresql://x@127.0.0.1:9/x"},
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith(f"{test[3]}: down")


# --------------------------------------------------------------------------- endpoints
def test_endpoints_prod_uses_only_derived_variables():
    used = {m.group(1) for m in VAR.finditer((ROOT / "endpoints.prod.yml").read_text())}
    assert used == set(settings.ENDPOINT_VARIABLES)
    for match in VAR.finditer((ROOT / "endpoints.prod.yml").read_text()):
        assert match.group(2) is None, "Rasa 3.6 has no ${VAR:-default} syntax"


def test_rasa_reads_endpoints_prod_with_the_derived_environment(monkeypatch):
    from rasa.core.utils import AvailableEndpoints

    for name, value in settings.production_env({"REDIS_URL": "redis://:pw@cache:6380/2",
                                               "DATABASE_URL": "postgresql://bk:secret@db:5433/prod"}).items():
        monkeypatch.setenv(name, value)
    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.prod.yml"))
    assert endpoints.tracker_store.type == "infra.tracker_store.ResilientRedisTrackerStore"
    assert (endpoints.tracker_store.url, endpoints.tracker_store.kwargs["port"],
            endpoints.tracker_store.kwargs["db"], endpoints.tracker_store.kwargs["password"]) == \
        ("cache", "6380", "2", "pw")
    assert endpoints.tracker_store.kwargs["record_exp"] == settings.DEFAULTS["TRACKER_EXPIRY_SECONDS"]
    assert endpoints.tracker_store.kwargs["key_prefix"] == "bakame"
    assert (endpoints.tracker_store.kwargs["compact_after_turns"],
            endpoints.tracker_store.kwargs["compact_keep_turns"]) == ("24", "8")
    assert endpoints.lock_store.type == "infra.lock_store.ResilientRedisLockStore"
    assert endpoints.event_broker.type == "infra.event_broker.BufferedSQLEventBroker"
    assert (endpoints.event_broker.url, endpoints.event_broker.kwargs["db"],
            endpoints.event_broker.kwargs["username"], endpoints.event_broker.kwargs["password"]) == \
        ("db", "prod", "bk", "secret")
    assert endpoints.action.url == "http://localhost:5055/webhook"


def test_credentials_prod_channels_exist():
    from rasa.core.channels.channel import InputChannel
    from rasa.shared.utils.common import class_from_module_path

    channels = yaml.safe_load((ROOT / "credentials.prod.yml").read_text())
    assert "infra.rest_channel.ResilientRestInput" in channels
    for path in channels:
        cls = class_from_module_path(path)
        assert issubclass(cls, InputChannel), path
    assert class_from_module_path("infra.rest_channel.ResilientRestInput").name() == "rest"


# --------------------------------------------------------------------------- settings
def test_settings_defaults_for_this_machine():
    env = settings.production_env({})
    assert env["REDIS_URL"] == "redis://localhost:6379/0"
    assert env["DATABASE_URL"] == "postgresql://postgres@localhost:5432/bakame"
    assert env["ACTION_ENDPOINT_URL"] == "http://localhost:5055/webhook"
    assert env["REDIS_LOCK_DB"] == env["REDIS_DB"] == "0"
    # scripts/run.sh's ACTIONS_PORT moves the action endpoint along (make run-prod)
    assert settings.production_env({"ACTIONS_PORT": "5255"})["ACTION_ENDPOINT_URL"] == "http://localhost:5255/webhook"


def test_settings_from_urls_and_parts():
    env = settings.production_env({"REDIS_URL": "rediss://:p%40ss@cache.example:6390/3",
                                   "DATABASE_URL": "postgres://u:w%2Fx@db.example/bk?sslmode=require"})
    assert (env["REDIS_HOST"], env["REDIS_PORT"], env["REDIS_DB"], env["REDIS_PASSWORD"], env["REDIS_SSL"]) == \
        ("cache.example", "6390", "3", "p@ss", "true")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DB"], env["POSTGRES_USER"],
            env["POSTGRES_PASSWORD"], env["POSTGRES_SSLMODE"]) == ("db.example", "5432", "bk", "u", "w/x", "require")
    assert env["DATABASE_URL"] == "postgresql://u:w%2Fx@db.example:5432/bk?sslmode=require"
    # A part set explicitly wins, and the URL is rebuilt to match it.
    env = settings.production_env({"REDIS_URL": "redis://a:1/0", "REDIS_HOST": "b", "POSTGRES_PASSWORD": "a b@c"})
    assert env["REDIS_URL"] == "redis://b:1/0"
    assert env["DATABASE_URL"] == "postgresql://postgres:a%20b%40c@localhost:5432/bakame"


@pytest.mark.parametrize("bad", [{"REDIS_URL": "http://x"}, {"DATABASE_URL": "mysql://x/y"},
                                 {"REDIS_PORT": "six"}, {"REDIS_KEY_PREFIX": "my-app"}])
def test_settings_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        settings.production_env(bad)


def test_settings_command_line():
    out = subprocess.run([sys.executable, "-m", "infra.settings"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "REDIS_URL": "redis://r:1/0", "DATABASE_URL": ""}, timeout=60)
    assert out.returncode == 0 and "export REDIS_HOST=r" in out.stdout
    ran = subprocess.run([sys.executable, "-m", "infra.settings", "exec", "--", sys.executable, "-c",
                          "import os; print(os.environ['REDIS_PORT'], os.environ['POSTGRES_DB'])"],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "REDIS_URL": "redis://r:7/0", "DATABASE_URL": "",
                              # exec starts production servers: only with the secrets (infra.settings)
                              "TWILIO_AUTH_TOKEN": "compose-test-twilio-token", "TWILIO_VALIDATE_SIGNATURE": "true",
                              "SENDER_ID_SECRET": "compose-test-sender-secret", "RASA_AUTH_TOKEN": "compose-test-api-token"},
                         timeout=60)
    assert ran.stdout.split() == ["7", "bakame"]

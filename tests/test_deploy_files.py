"""deploy/k8s and deploy/systemd: the scale-out topology for Kubernetes and for a plain machine
(docs/scaling.md). No cluster or systemd here: the files parse, name each other consistently
and start what docker-compose.yml starts (deploy/nginx is tested by test_compose.py and
test_scale_out.py)."""
import configparser
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from infra import settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
SYSTEMD = ROOT / "deploy" / "systemd"


@pytest.fixture(scope="module")
def objects():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    assert {p.name for p in K8S.glob("*.yaml")} == {*kustomization["resources"], "kustomization.yaml"}
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def workload(objects, name):
    return next(d for (kind, n), d in objects.items() if n == name and kind in ("Deployment", "StatefulSet"))


def container(objects, name):
    return workload(objects, name)["spec"]["template"]["spec"]["containers"][0]


def env_of(objects, name):
    """The container's environment: its ConfigMaps' data and the names it takes from Secrets."""
    c = container(objects, name)
    env = {}
    for source in c.get("envFrom", []):
        env.update(objects[("ConfigMap", source["configMapRef"]["name"])]["data"])
    for item in c.get("env", []):
        env[item["name"]] = item.get("value", "<secret>")
    return env


def test_the_topology(objects):
    rasa = workload(objects, "bakame-rasa")
    assert rasa["kind"] == "StatefulSet" and rasa["spec"]["replicas"] == 3
    assert workload(objects, "bakame-actions")["spec"]["replicas"] >= 1
    for name in ("bakame-redis", "bakame-postgres"):  # external, managed elsewhere
        assert objects[("Service", name)]["spec"]["type"] == "ExternalName"
    backend = objects[("Ingress", "bakame")]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert ("Service", backend["name"]) in objects


def test_services_select_their_pods_and_ports(objects):
    for (kind, name), service in objects.items():
        if kind != "Service" or service["spec"].get("type") == "ExternalName":
            continue
        selector = service["spec"]["selector"]
        pods = [d for (k, _), d in objects.items() if k in ("Deployment", "StatefulSet")
                and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert pods, f"{name} selects no pods"
        for pod in pods:
            assert pod["spec"]["selector"]["matchLabels"].items() <= pod["spec"]["template"]["metadata"]["labels"].items()
            ports = {p["name"]: p["containerPort"] for p in pod["spec"]["template"]["spec"]["containers"][0]["ports"]}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports, name
    rasa = workload(objects, "bakame-rasa")
    assert ("Service", rasa["spec"]["serviceName"]) in objects
    assert objects[("Service", rasa["spec"]["serviceName"])]["spec"]["clusterIP"] == "None"


def test_the_secrets_a_production_start_requires(objects):
    secret_refs = set()
    for name in ("bakame-rasa", "bakame-actions"):
        for item in container(objects, name).get("env", []):
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "bakame-secrets"
            assert ref["key"] == item["name"]
            secret_refs.add(item["name"])
    rasa_secrets = {i["name"] for i in container(objects, "bakame-rasa")["env"]}
    assert set(settings.PRODUCTION_SECRETS) <= rasa_secrets  # else the start is refused
    assert {"REDIS_PASSWORD", "POSTGRES_PASSWORD"} <= secret_refs
    for (kind, _), obj in objects.items():  # nothing secret in a ConfigMap
        if kind == "ConfigMap":
            assert not set(obj["data"]) & (set(settings.PRODUCTION_SECRETS) | {"REDIS_PASSWORD", "POSTGRES_PASSWORD"})


def test_the_environment_gives_every_endpoint_variable(objects):
    for name in ("bakame-rasa", "bakame-actions"):
        env = {k: str(v) for k, v in env_of(objects, name).items()}
        derived = settings.production_env({k: v for k, v in env.items() if v != "<secret>"})
        assert set(settings.ENDPOINT_VARIABLES) <= set(derived)
        assert ("Service", derived["REDIS_HOST"]) in objects and ("Service", derived["POSTGRES_HOST"]) in objects
        action = urlsplit(derived["ACTION_ENDPOINT_URL"])
        assert action.hostname == "bakame-actions" and action.port == 5055
        assert action.port in [p["port"] for p in objects[("Service", "bakame-actions")]["spec"]["ports"]]


def test_each_rasa_pod_keeps_its_own_spool(objects):
    rasa = workload(objects, "bakame-rasa")
    claims = [t["metadata"]["name"] for t in rasa["spec"]["volumeClaimTemplates"]]
    mounts = {m["name"]: m["mountPath"] for m in container(objects, "bakame-rasa")["volumeMounts"]}
    spool = Path(env_of(objects, "bakame-rasa")["EVENT_SPOOL_PATH"])
    assert claims == ["event-spool"] and Path(mounts["event-spool"]) == spool.parent


def test_probes_use_the_health_endpoints(objects):
    rasa, actions = container(objects, "bakame-rasa"), container(objects, "bakame-actions")
    assert rasa["readinessProbe"]["exec"]["command"][:4] == ["python", "scripts/healthcheck.py", "rasa", "--no-llm-probe"]
    assert (ROOT / "scripts" / "healthcheck.py").exists()
    assert rasa["startupProbe"]["httpGet"]["path"] == "/"
    assert actions["readinessProbe"]["httpGet"]["path"].startswith("/healthz")
    assert actions["livenessProbe"]["httpGet"]["path"] == "/health"
    for c in (rasa, actions):
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]


def test_the_commands_are_composes(objects):
    from rasa.__main__ import create_argument_parser

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    args = container(objects, "bakame-rasa")["args"]
    assert [a for a in args if "RASA_AUTH_TOKEN" not in a] == \
        [a for a in compose["rasa-1"]["command"] if "RASA_AUTH_TOKEN" not in a]
    assert args[:4] == ["python", "-m", "infra.rasa_main", "run"]  # the launcher: Rasa with its patches
    parsed = create_argument_parser().parse_args(args[3:])
    assert parsed.auth_token == "$(RASA_AUTH_TOKEN)"  # Kubernetes expands it from the Secret
    assert container(objects, "bakame-actions")["args"] == compose["actions"]["command"]
    env = env_of(objects, "bakame-rasa")
    assert env["SANIC_WORKERS"] == "1" and env["API_TRUSTED_PROXIES"] == "1"
    annotations = objects[("Ingress", "bakame")]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"] == "error timeout"  # never resend a turn


# --------------------------------------------------------------------------- systemd
def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def unit_env(name):
    """Every Environment= line of the unit (configparser would keep only the last)."""
    env = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if line.startswith("Environment="):
            env.update(dict(item.split("=", 1) for item in shlex.split(line[len("Environment="):])))
    return env


def test_systemd_units_start_composes_commands_through_the_settings_module():
    from rasa.__main__ import create_argument_parser

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in (("bakame-rasa@.service", "rasa-1"), ("bakame-actions.service", "actions")):
        parser = unit(name)
        argv = shlex.split(parser["Service"]["ExecStart"])
        assert argv[1:5] == ["-m", "infra.settings", "exec", "--"]  # secrets checked, variables derived
        command = [Path(argv[5]).name, *argv[6:]]
        expected = [a.replace("5005", "%i") for a in compose[service]["command"]]
        assert [a for a in command if "RASA_AUTH_TOKEN" not in a] == [a for a in expected if "RASA_AUTH_TOKEN" not in a]
        rasa_args = command[3:] if command[:3] == ["python", "-m", "infra.rasa_main"] else command[1:]
        create_argument_parser().parse_args([a.replace("%i", "5005") for a in rasa_args])
        assert parser["Service"]["Restart"] == "always"


def test_systemd_rasa_instances_have_their_own_port_and_spool():
    env = unit_env("bakame-rasa@.service")
    assert "%i" in env["EVENT_SPOOL_PATH"] and env["SANIC_WORKERS"] == "1"
    assert env["ACTION_ENDPOINT_URL"].endswith(":5055/webhook")
    assert unit_env("bakame-actions.service")["SANIC_HOST"] == "127.0.0.1"

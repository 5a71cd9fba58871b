"""The stack under test, started the way production starts it, on free local ports:

* the fake OpenAI-compatible server (``tests/fake_openai.py``) with a fixed delay;
* the action server (``bench.action_server`` = ``rasa run actions`` plus a timing
  middleware), progress in PostgreSQL (asyncpg), as in production;
* the Rasa server (``bench.rasa_launcher``: ``python -m infra.rasa_main run``, the
  project's patches installed) with ``endpoints.prod.yml`` (Redis tracker + lock store, PostgreSQL
  event broker through the spool of ``infra.event_broker``) and ``credentials.prod.yml``
  (REST + Twilio voice + Twilio SMS), environment derived by ``infra.settings`` exactly as
  ``make run-prod`` does. Everything is keyed by a per-run Redis key prefix and a
  benchmark database, so nothing touches anyone else's data.

When the production files are not there (an older checkout), a temporary endpoints file
with Rasa's built-in ``redis`` tracker/lock store and ``sql`` broker is used instead.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "bakame.tar.gz"

BENCH_AUTH_TOKEN = "bench-twilio-auth-token-0123456789"
BENCH_SENDER_SECRET = "bench-sender-id-secret-0123456789abcdef"
BENCH_PUBLIC_BASE_URL = "https://bakame-bench.invalid"
BENCH_REST_TOKEN = "bench-rest-channel-token-0123456789"  # credentials.prod.yml's REST channel needs one
LLM_MARK = "(bench-llm)"
LLM_REPLY = ("Good point, but think about the other side too: what would change for a family "
             "that cannot pay? " + LLM_MARK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- memory
def _status_kb(pid: int, key: str) -> Optional[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def children_of(pid: int) -> List[int]:
    """Direct and indirect child processes (from /proc, no psutil)."""
    parents: Dict[int, List[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def memory_of(pid: int) -> Dict[str, Optional[float]]:
    """Peak (VmHWM) and current (VmRSS) resident memory of the process, in MiB."""
    hwm, rss = _status_kb(pid, "VmHWM"), _status_kb(pid, "VmRSS")
    return {"peak_mib": round(hwm / 1024, 1) if hwm else None, "rss_mib": round(rss / 1024, 1) if rss else None}


# --------------------------------------------------------------------------- services
def check_services(redis_url: str, database_url: str) -> List[str]:
    """Problems with Redis / PostgreSQL (empty when both answer)."""
    problems = []
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"Redis at {redis_url} does not answer ({type(exc).__name__}: {exc})")
    try:
        import psycopg2

        psycopg2.connect(database_url.replace("postgresql://", "postgresql://", 1), connect_timeout=3,
                         dbname="postgres").close()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"PostgreSQL at {database_url} does not answer ({type(exc).__name__}: {exc})")
    return problems


def ensure_database(env: Dict[str, str]) -> str:
    from infra.settings import prepare

    return prepare(env)


def production_files_present() -> bool:
    return (ROOT / "endpoints.prod.yml").exists() and (ROOT / "credentials.prod.yml").exists() \
        and (ROOT / "infra" / "settings.py").exists()


# --------------------------------------------------------------------------- processes
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: Optional[float] = None
    memory: Dict[str, object] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def sample_memory(self) -> Dict[str, object]:
        """Peak memory of the process and (Sanic workers) of each child."""
        if not self.alive():
            return self.memory
        main = memory_of(self.popen.pid)
        kids = {str(pid): memory_of(pid) for pid in children_of(self.popen.pid)}
        kids = {pid: m for pid, m in kids.items() if m.get("peak_mib")}
        self.memory = {"pid": self.popen.pid, **main}
        if kids:
            self.memory["children"] = kids
            self.memory["peak_mib_total"] = round(
                (main.get("peak_mib") or 0) + sum(m["peak_mib"] or 0 for m in kids.values()), 1)
        return self.memory

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.popen.kill()
            self.popen.wait()


def _spawn(name: str, argv: List[str], env: Dict[str, str], log: Path) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                             start_new_session=True)  # own process group: stopped with its workers
    return Proc(name, popen, log)


def _wait_http(proc: Proc, url: str, timeout: float, ok=lambda r: r.ok) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}); log:\n{proc.tail()}")
        try:
            if ok(requests.get(url, timeout=3)):
                proc.ready_after_s = round(time.monotonic() - proc.started_at, 1)
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{proc.name}: {url} not ready after {timeout:.0f}s; log:\n{proc.tail()}")


class BenchStack:
    """Start with :meth:`start`, stop with :meth:`stop` (also on errors)."""

    def __init__(
        self,
        workdir: Path,
        run_id: str,
        redis_url: str = "redis://127.0.0.1:6379/0",
        database_url: str = "postgresql://postgres@127.0.0.1:5432/bakame_bench",
        llm_delay: float = 1.5,
        rasa_workers: int = 1,
        action_workers: int = 1,
        endpoints: Optional[Path] = None,
        credentials: Optional[Path] = None,
        extra_env: Optional[Dict[str, str]] = None,
        rasa_ready_timeout: float = 900.0,
        overlay: Optional[Path] = None,
        model: Optional[Path] = None,
    ) -> None:
        self.workdir = workdir
        self.run_id = run_id
        self.redis_url = redis_url
        self.database_url = database_url
        self.llm_delay = llm_delay
        self.rasa_workers = max(1, int(rasa_workers))
        self.action_workers = max(1, int(action_workers))
        self.extra_env = dict(extra_env or {})
        self.rasa_ready_timeout = rasa_ready_timeout
        self.model = Path(model) if model else MODEL
        self.overlay = overlay  # a directory whose packages (infra/, connectors/, ...) shadow the checkout's
        self.production = production_files_present() and endpoints is None
        self.endpoints = endpoints or (ROOT / "endpoints.prod.yml")
        self.credentials = credentials or (ROOT / "credentials.prod.yml")
        self.llm_port, self.actions_port, self.rasa_port = free_port(), free_port(), free_port()
        self.key_prefix = "bench" + "".join(c for c in run_id if c.isalnum())
        self.timings_dir = workdir / "action_timings"
        self.procs: Dict[str, Proc] = {}
        self.env: Dict[str, str] = {}

    # ------------------------------------------------------------------ urls
    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def rasa_log(self) -> Path:
        return self.workdir / "rasa.log"

    # ------------------------------------------------------------------ environment
    def build_env(self) -> Dict[str, str]:
        env = dict(os.environ)
        for key in ("PROGRESS_DB_URL", "PROGRESS_DB_PATH", "OPENAI_BASE_URL", "OPENAI_API_KEY", "STT_BASE_URL",
                    "STT_API_KEY", "SANIC_WORKERS", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD",
                    "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"):
            env.pop(key, None)
        env.update({
            "PYTHONPATH": (f"{self.overlay}:" if self.overlay else "") + str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.database_url,
            "REDIS_KEY_PREFIX": self.key_prefix,
            "TRACKER_EXPIRY_SECONDS": "7200",
            "EVENT_SPOOL_PATH": str(self.workdir / "spool" / "events.sqlite"),
            "ACTION_ENDPOINT_URL": f"{self.actions_url}/webhook",
            "LLM_BASE_URL": f"http://127.0.0.1:{self.llm_port}/v1",
            "LLM_API_KEY": "bench",
            "LLM_MODEL": "fake-model",
            "TWILIO_AUTH_TOKEN": BENCH_AUTH_TOKEN,
            "TWILIO_VALIDATE_SIGNATURE": "true",
            "SENDER_ID_SECRET": BENCH_SENDER_SECRET,
            "RASA_AUTH_TOKEN": BENCH_REST_TOKEN,
            "PUBLIC_BASE_URL": BENCH_PUBLIC_BASE_URL,
            "VOICE_RW_MODE": "gather",  # Twilio's own ASR: no transcription round trip in the bench
            "RASA_TELEMETRY_ENABLED": "false",
            "BENCH_ACTION_TIMINGS_DIR": str(self.timings_dir),
            # simulated learners talk back to back, many from one address: measure the turns, not the limits
            "RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_PER_HOUR": "0",
            "API_RATE_LIMIT_PER_MINUTE": "0", "API_RATE_LIMIT_PER_HOUR": "0",
        })
        if self.overlay:
            env["BENCH_OVERLAY_DIR"] = str(self.overlay)
        if self.production:
            from infra.settings import production_env

            env.update(production_env(env))
        env.update(self.extra_env)
        self.env = env
        return env

    def _fallback_endpoints(self) -> Path:
        """Rasa's built-in stores (only when endpoints.prod.yml / infra/ are missing)."""
        from urllib.parse import urlsplit

        r, p = urlsplit(self.redis_url), urlsplit(self.database_url)
        path = self.workdir / "endpoints.yml"
        path.write_text(
            f"action_endpoint:\n  url: \"{self.actions_url}/webhook\"\n"
            f"tracker_store:\n  type: redis\n  url: {r.hostname}\n  port: {r.port or 6379}\n"
            f"  db: {(r.path or '/0').lstrip('/') or 0}\n  key_prefix: {self.key_prefix}\n  record_exp: 7200\n"
            f"lock_store:\n  type: redis\n  url: {r.hostname}\n  port: {r.port or 6379}\n"
            f"  db: {(r.path or '/0').lstrip('/') or 0}\n  key_prefix: {self.key_prefix}\n"
            f"event_broker:\n  type: sql\n  dialect: postgresql\n  url: {p.hostname}\n  port: {p.port or 5432}\n"
            f"  db: {p.path.lstrip('/')}\n  username: {p.username or 'postgres'}\n"
        )
        return path

    def _fallback_credentials(self) -> Path:
        path = self.workdir / "credentials.yml"
        path.write_text("rest:\nconnectors.twilio_voice.TwilioVoiceInput:\nconnectors.twilio_sms.TwilioSmsInput:\n")
        return path

    # ------------------------------------------------------------------ lifecycle
    def start(self, log=print) -> "BenchStack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.timings_dir.exists():
            shutil.rmtree(self.timings_dir)
        self.timings_dir.mkdir(parents=True)
        env = self.build_env()
        if self.production:
            log(f"  database: {ensure_database(env)}")
        else:
            log("  endpoints.prod.yml / infra/ not found: Rasa's built-in redis + sql stores instead")
            self.endpoints, self.credentials = self._fallback_endpoints(), self._fallback_credentials()
            try:
                from infra.settings import prepare  # noqa: F401
            except ImportError:
                pass
        py = str(VENV_BIN / "python")
        llm = _spawn("fake_llm", [py, str(ROOT / "tests" / "fake_openai.py"), "--port", str(self.llm_port),
                                  "--delay", str(self.llm_delay), "--reply", LLM_REPLY],
                     env, self.workdir / "fake_llm.log")
        self.procs["fake_llm"] = llm
        _wait_http(llm, f"http://127.0.0.1:{self.llm_port}/health", 30)

        actions_env = dict(env, SANIC_WORKERS=str(self.action_workers))
        actions = _spawn("action_server", [py, "-m", "bench.action_server", "--actions", "actions",
                                           "--port", str(self.actions_port)],
                         actions_env, self.workdir / "actions.log")
        self.procs["action_server"] = actions
        _wait_http(actions, f"{self.actions_url}/health", 300)
        log(f"  action server ready after {actions.ready_after_s}s (port {self.actions_port}, "
            f"{self.action_workers} worker(s))")

        rasa_env = dict(env, SANIC_WORKERS=str(self.rasa_workers))
        rasa = _spawn("rasa", [py, "-m", "bench.rasa_launcher", "run", "--model", str(self.model), "--enable-api",
                               "--port", str(self.rasa_port), "--credentials", str(self.credentials),
                               "--endpoints", str(self.endpoints), "--log-file", str(self.rasa_log)],
                      rasa_env, self.workdir / "rasa.stdout.log")
        self.procs["rasa"] = rasa
        _wait_http(rasa, f"{self.rasa_url}/status", self.rasa_ready_timeout,
                   ok=lambda r: r.ok and bool(r.json().get("model_file")))
        if self.rasa_workers > 1:  # /status answered by one worker; wait for the others to load too
            self._wait_workers_loaded(rasa)
        log(f"  Rasa ready after {rasa.ready_after_s}s (port {self.rasa_port}, {self.rasa_workers} worker(s))")
        return self

    def _wait_workers_loaded(self, rasa: Proc, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = self.rasa_log.read_text(errors="replace")
            except OSError:
                text = ""
            if text.count("Rasa server is up and running") >= self.rasa_workers:
                return
            time.sleep(1)

    def sample_memory(self) -> Dict[str, object]:
        return {name: proc.sample_memory() for name, proc in self.procs.items()}

    def stop(self) -> None:
        for name in ("rasa", "action_server", "fake_llm"):
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop()

    def cleanup_redis(self) -> int:
        """Delete this run's keys (trackers, locks) from Redis; the number deleted."""
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i:i + 500])
            return len(keys)
        except Exception:  # noqa: BLE001 - best effort
            return 0

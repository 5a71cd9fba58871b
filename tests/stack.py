"""Starts the real assistant for end-to-end tests: the action server and the Rasa server
with the trained model, on free ports, with a fresh SQLite progress store.

The ``assistant`` session fixture (tests/conftest.py) starts it once for all e2e tests.
"""
from __future__ import annotations

import os
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
# Rasa Core started as every start does: the project's launcher (patches installed, infra/rasa_main.py).
RASA_MAIN = [sys.executable, "-m", "infra.rasa_main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 180.0, ok=lambda r: r.ok) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited ({process.returncode}); log:\n{log.read_text()[-3000:]}")
        try:
            if ok(requests.get(url, timeout=2)):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s; log:\n{log.read_text()[-3000:]}")


def ensure_model() -> Path:
    subprocess.run([str(ROOT / "scripts" / "train_if_needed.sh")], check=True, cwd=ROOT)
    return MODEL


@dataclass
class Stack:
    workdir: Path
    env: Dict[str, str]
    actions_port: int = field(default_factory=free_port)
    rasa_port: int = field(default_factory=free_port)
    credentials: Path = ROOT / "credentials.yml"
    endpoints_extra: str = ""
    actions: Optional[subprocess.Popen] = None
    rasa: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def start_actions(self) -> None:
        log = self.workdir / "actions.log"
        self.actions = subprocess.Popen(
            [str(VENV_BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(self.actions_port)],
            cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )
        wait_for(f"http://127.0.0.1:{self.actions_port}/health", self.actions, log)

    def start_rasa(self) -> None:
        endpoints = self.workdir / "endpoints.yml"
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n' + self.endpoints_extra
        )
        log = self.workdir / "rasa.log"
        self.rasa = subprocess.Popen(
            [*RASA_MAIN, "run", "--model", str(MODEL), "--enable-api", "--port", str(self.rasa_port),
             "--credentials", str(self.credentials), "--endpoints", str(endpoints)],
            cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )
        wait_for(f"{self.url}/status", self.rasa, log, ok=lambda r: r.ok and r.json().get("model_file"))

    def start(self) -> "Stack":
        self.start_actions()
        self.start_rasa()
        return self

    def stop_actions(self) -> None:
        _stop(self.actions)
        self.actions = None

    def stop(self) -> None:
        _stop(self.rasa)
        self.rasa = None
        self.stop_actions()

    def say(self, sender: str, text: str) -> List[dict]:
        response = requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
        response.raise_for_status()
        return response.json()

    def texts(self, sender: str, text: str) -> List[str]:
        return [m.get("text", "") for m in self.say(sender, text)]

    def slot(self, sender: str, name: str):
        tracker = requests.get(f"{self.url}/conversations/{sender}/tracker", timeout=30).json()
        return tracker["slots"].get(name)


def _stop(process: Optional[subprocess.Popen]) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stack_env(workdir: Path, **extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("DATABASE_URL", "PROGRESS_DB_URL", "LLM_BASE_URL", "OPENAI_BASE_URL", "LLM_API_KEY", "OPENAI_API_KEY", "REDIS_URL"):
        env.pop(key, None)
    env.update({
        "PYTHONPATH": str(ROOT),
        "PROGRESS_DB_URL": f"sqlite:///{workdir / 'progress.db'}",
        "PROGRESS_SPOOL_PATH": str(workdir / "progress-queue.sqlite"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        # tests talk faster than any learner; the limits have their own tests (test_rate_limit*.py)
        "RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_PER_HOUR": "0",
        "API_RATE_LIMIT_PER_MINUTE": "0", "API_RATE_LIMIT_PER_HOUR": "0",
    })
    env.update(extra)
    return env

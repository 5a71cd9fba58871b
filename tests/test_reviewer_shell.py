"""The reviewers' terminal chat (`make shell`): `rasa shell` (through the project's launcher,
`python -m infra.rasa_main shell`) with the trained model and the real
action server, driven through a pseudo-terminal like a person typing. A Kinyarwanda greeting gets
the bilingual welcome and the name question in Kinyarwanda; asking for English switches the
conversation; /stop ends the shell cleanly.

`make interactive` runs the same processes plus `rasa interactive --e2e`; its command line is
checked here too (an interactive session needs a person at the keyboard)."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.stack import MODEL, RASA_MAIN, ROOT, VENV_BIN, _stop, ensure_model, free_port, stack_env, wait_for

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")


class Terminal:
    """A child process on a pseudo-terminal: type lines, wait for text on the screen."""

    def __init__(self, argv, cwd: Path, env: dict):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                        start_new_session=True, close_fds=True)
        os.close(slave)
        self.raw = b""
        self.seen = 0  # characters of `text` already matched by expect()

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait until `pattern` (regex) appears after the previous match; return the text in between."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.text, self.seen)
            if match:
                between = self.text[self.seen:match.end()]
                self.seen = match.end()
                return between
            if time.monotonic() > deadline or (self.process.poll() is not None and not self._read(0.2)):
                raise AssertionError(f"{pattern!r} not seen within {timeout}s; screen:\n{self.text[-4000:]}")
            self._read(0.5)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        os.close(self.master)


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    ensure_model()
    workdir = tmp_path_factory.mktemp("shell")
    env = stack_env(workdir, RASA_TELEMETRY_ENABLED="false", TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1",
                    COLUMNS="160", LINES="40")
    actions_port = free_port()
    log = workdir / "actions.log"
    actions = subprocess.Popen(
        [str(VENV_BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(actions_port)],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n')
    # The shell loads the model while the action server starts (both take a while).
    terminal = Terminal([*RASA_MAIN, "shell", "--model", str(MODEL), "--endpoints", str(endpoints),
                         "--port", str(free_port())], cwd=ROOT, env=env)
    try:
        wait_for(f"http://127.0.0.1:{actions_port}/health", actions, log)
        terminal.expect(r"use '/stop' to exit", timeout=300)
        yield terminal
    finally:
        terminal.close()
        _stop(actions)


def test_a_kinyarwanda_greeting_then_english_then_stop(shell):
    shell.expect(r"Your input ->")
    shell.type("muraho")
    reply = shell.expect(r"Witwa nde\?", timeout=90)
    assert "Muraho! Hello!" in reply and "Ndi BAKAME" in reply  # the bilingual welcome
    assert "What is your name" not in reply

    shell.expect(r"Your input ->")
    shell.type("speak English")
    reply = shell.expect(r"What is your name\?", timeout=90)
    assert "OK, we will speak English." in reply
    assert "Witwa nde" not in reply

    shell.expect(r"Your input ->")
    shell.type("/stop")
    assert shell.process.wait(timeout=60) == 0, shell.text[-2000:]


def test_make_interactive_runs_the_action_server_and_rasa_interactive():
    dry = subprocess.run(["make", "-n", "-o", ".venv/.installed", "-o", "train", "interactive"], cwd=ROOT,
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "rasa run actions --actions actions --port 5055" in dry.stdout
    command = next(line for line in dry.stdout.splitlines() if "-m infra.rasa_main interactive" in line)
    for part in ("--model models/bakame.tar.gz", "--endpoints endpoints.yml", "--e2e"):
        assert part in command

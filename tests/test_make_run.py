"""`make run`'s start script brings up a server that answers in the learner's language,
and `make sim`'s script talks to it; what it prints is BAKAME's and Rasa's own (the patches
of Rasa installed, no third-party warnings)."""
import os
import re
import signal
import subprocess
import sys
import uuid

import pytest
import requests

from tests.stack import ROOT, ensure_model, free_port, stack_env, wait_for

pytestmark = pytest.mark.e2e


def test_run_script_serves_rest_in_the_learners_language(tmp_path):
    ensure_model()
    port, actions_port = free_port(), free_port()
    env = stack_env(tmp_path, RASA_PORT=str(port), ACTIONS_PORT=str(actions_port))
    log = tmp_path / "run.log"
    process = subprocess.Popen([str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/status", process, log, ok=lambda r: r.ok and r.json().get("model_file"))
        screen = log.read_text()
        assert "infra.rasa_patches  - Rasa 3.6.21 patched: failsafe, timing, schema, events, pool, window, slotmap, nlucache, applied" in screen
        # the loaded model is out of the garbage collector's sight (the gcfreeze speed-up, issue 16)
        assert re.search(r"gc: \d{6,} objects of the loaded model frozen", screen), screen
        # Python's warning format (file:line: SomethingWarning:) from a library: none on the first screen
        assert not re.findall(r"^\S+:\d+: \w*Warning:", screen, re.MULTILINE), screen
        url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        sender = f"run-{uuid.uuid4().hex[:8]}"
        texts = [m["text"] for m in requests.post(url, json={"sender": sender, "message": "muraho"}, timeout=60).json()]
        assert texts[1].startswith("Witwa nde?")

        sim = subprocess.run([sys.executable, str(ROOT / "scripts" / "sim.py"), "--url", url, "--sender", sender,
                              "nitwa Ineza", "ndashaka imibare"], capture_output=True, text=True, timeout=120)
        assert sim.returncode == 0, sim.stderr
        assert "BAKAME: Nishimiye kukumenya, Ineza!" in sim.stdout
        assert "BAKAME: Ikaze mu mibare!" in sim.stdout
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    # Ctrl-C / TERM stops the action server too
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{actions_port}/health", timeout=2)


def test_sim_says_clearly_when_nothing_is_running():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sim.py"), "--url",
                             f"http://127.0.0.1:{free_port()}/webhooks/rest/webhook", "hello"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "start the assistant first with `make run`" in result.stderr

"""Shared pytest fixtures (several engineers add to this file: keep others' fixtures)."""
import sys
from pathlib import Path

import pytest

# `actions` and `tests` importable whatever way pytest is started.
_ROOT = Path(__file__).resolve().parents[1]
for _p in (str(_ROOT), str(_ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from fake_openai import FakeOpenAI  # noqa: E402
from tests.stack import Stack, ensure_model, stack_env  # noqa: E402


@pytest.fixture
def fake_openai():
    """A running fake OpenAI-compatible server (tests/fake_openai.py), fresh per test.

    ``fake_openai.url`` is the base URL; ``fake_openai.configure(mode=..., reply=...,
    delay=..., status=...)`` changes behaviour; ``fake_openai.requests`` records calls.
    """
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def assistant(tmp_path_factory):
    """The assistant as `make run` starts it (embedded defaults, no LLM)."""
    ensure_model()
    workdir = tmp_path_factory.mktemp("stack")
    stack = Stack(workdir=workdir, env=stack_env(workdir))
    try:
        stack.start()
    except BaseException:
        stack.stop()  # a start that timed out must not leave its servers running
        raise
    yield stack
    stack.stop()

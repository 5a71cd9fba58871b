"""The patches of Rasa (infra/rasa_patches.py, issues 6 and 12) and the launcher every Rasa
start goes through (infra/rasa_main.py).

Each speed-up keeps Rasa's behaviour and does less work -- checked against Rasa's own code
where it exists; install() is idempotent and refuses another Rasa version; every start
(make run, make run-prod, Docker, make shell/interactive/test-stories, the benchmark, the
tests' servers) uses the launcher; and the stack as `make run` starts it has the patches
(what the real action server receives, observed on the wire).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List

import pytest
import requests
from aiohttp import web

from infra import rasa_patches
from tests.stack import ROOT, Stack, ensure_model, stack_env


@pytest.fixture(scope="module", autouse=True)
def applied():
    names = rasa_patches.install()
    assert names == ["failsafe", "timing", "schema", "events", "pool", "window", "slotmap", "nlucache", "applied", "states", "askskip",
                     "gcfreeze", "fastload"]
    return names


async def test_action_results_are_still_validated():
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [{"event": "slot", "name": "a", "value": 1}], "responses": []})
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": [{"no_event_key": 1}]})


async def test_events_resolve_to_the_same_classes():
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event, SlotSet, UserUttered

    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("user") is UserUttered
    for cls in rasa.shared.utils.common.all_subclasses(Event):
        assert Event.resolve_by_type(cls.type_name) is not None
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")


def _tracker(turns: int):
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    events = [ActionExecuted("action_session_start"), SlotSet("language", "rw"), ActionExecuted("action_listen")]
    for i in range(turns):
        events += [UserUttered(f"turn {i}"), BotUttered(f"answer {i}"), ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events("learner", events)


async def test_the_action_server_gets_the_last_three_turns_and_the_full_state():
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain

    domain = Domain.from_yaml("version: '3.1'\nslots:\n  language:\n    type: text\n    mappings: []\n")
    action = RemoteAction("action_x", None)
    long = action._action_call_format(_tracker(25), domain)
    texts = [e["text"] for e in long["tracker"]["events"] if e["event"] == "user"]
    assert texts == [f"turn {i}" for i in range(22, 25)]
    assert long["tracker"]["slots"]["language"] == "rw"
    assert long["tracker"]["latest_message"]["text"] == "turn 24"
    assert long["next_action"] == "action_x" and long["sender_id"] == "learner"
    short = action._action_call_format(_tracker(2), domain)
    assert [e["text"] for e in short["tracker"]["events"] if e["event"] == "user"] == [f"turn {i}" for i in range(2)]
    assert short["tracker"]["events"][0]["name"] == "action_session_start"  # untouched: Rasa's own format


async def test_action_calls_reuse_one_connection():
    """Rasa 3.6 opens a new connection per action call; pooled, consecutive calls share one."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    peers: List[int] = []

    async def webhook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[1])
        body = await request.json()
        return web.json_response({"events": [{"event": "slot", "name": "language", "value": "en"}],
                                  "responses": [{"text": f"ran {body['next_action']}"}]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        domain = Domain.from_yaml("version: '3.1'\nslots:\n  language:\n    type: text\n    mappings: []\n")
        action = RemoteAction("action_x", EndpointConfig(f"http://127.0.0.1:{port}/webhook"))
        output = CollectingOutputChannel()
        nlg = TemplatedNaturalLanguageGenerator(domain.responses)
        results = []
        for _ in range(3):
            results.append(await action.run(output, nlg, _tracker(2), domain))
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert len(peers) == 3 and len(set(peers)) == 1, peers
    assert [e.value for events in results for e in events if e.__class__.__name__ == "SlotSet"] == ["en"] * 3
    assert [e.text for events in results for e in events if e.__class__.__name__ == "BotUttered"] == \
        ["ran action_x"] * 3


class FakeGraph:
    """The NLU graph of a processor: counts parses, answers like a pipeline would."""

    def __init__(self) -> None:
        self.parsed: List[str] = []

    def run(self, inputs, targets):
        from rasa.shared.nlu.training_data.message import Message

        message = inputs["__message__"][0]
        self.parsed.append(message.text)
        out = Message(data={"text": message.text})
        out.set("intent", {"name": "answer", "confidence": 0.91}, add_to_output=True)
        out.set("entities", [{"entity": "number", "value": message.text}], add_to_output=True)
        out.set("language_detection", {"none": None, "en": "en", "rw": "rw"}, add_to_output=True)
        return {targets[0]: [out]}


def _processor(graph: FakeGraph):
    """Rasa's MessageProcessor (its own parse_message, patched) over a fake NLU graph."""
    from types import SimpleNamespace

    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.domain import Domain

    processor = MessageProcessor.__new__(MessageProcessor)
    processor.http_interpreter = None
    processor.graph_runner = graph
    processor.model_metadata = SimpleNamespace(nlu_target="nlu")
    processor.domain = Domain.from_yaml("version: '3.1'\nintents: [answer]\nentities: [number]\n")
    return processor


async def test_a_learners_repeated_message_is_parsed_once_and_each_gets_its_own_copy():
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.trackers import DialogueStateTracker

    graph = FakeGraph()
    processor = _processor(graph)
    tracker = DialogueStateTracker.from_events("learner", [])
    first = await processor.parse_message(UserMessage("7", sender_id="a"), tracker)
    first["entities"].append({"entity": "mutated"})  # what one turn does to its parse ...
    first["intent"]["name"] = "mutated"
    second = await processor.parse_message(UserMessage("7", sender_id="b"), tracker)
    other = await processor.parse_message(UserMessage("8", sender_id="a"), tracker)
    assert graph.parsed == ["7", "8"]  # "7" went through NLU once
    assert second == {"text": "7", "intent": {"name": "answer", "confidence": 0.91},  # ... not the next's
                      "entities": [{"entity": "number", "value": "7"}],
                      "language_detection": {"none": None, "en": "en", "rw": "rw"}}
    assert other["text"] == "8"


async def test_model_parse_is_never_cached():
    """POST /model/parse (no conversation) parses every time: the NLU floor stays a real parse."""
    from rasa.core.channels.channel import UserMessage

    graph = FakeGraph()
    processor = _processor(graph)
    for _ in range(3):
        assert (await processor.parse_message(UserMessage("yes")))["text"] == "yes"
    assert graph.parsed == ["yes"] * 3


def test_the_parse_cache_is_bounded_and_forgets_the_least_recently_used():
    cache = rasa_patches.ParseCache(2)
    cache.put("a", {"v": 1})
    cache.put("b", {"v": 2})
    assert cache.get("a") == {"v": 1}  # a is now the most recent
    cache.put("c", {"v": 3})
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == {"v": 1} and cache.get("c") == {"v": 3}
    assert (cache.hits, cache.misses) == (3, 1)


async def test_language_is_decided_in_rasa_without_calling_the_action_server():
    """`slotmap`: the language mapping's custom action is decided in Rasa; any other custom
    mapping action still goes to the action server."""
    from rasa.core.actions.action import ActionExtractSlots
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from core import language

    called: List[str] = []

    async def webhook(request: web.Request) -> web.Response:
        called.append((await request.json())["next_action"])
        return web.json_response({"events": [{"event": "slot", "name": "name", "value": "Aline"}], "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    text = "ndashaka kwiga imibare"
    parse = {"intent": {"name": "inform"}, "entities": [], "text": text,
             "language_detection": language.detections(text)}
    tracker = DialogueStateTracker.from_events("learner", [SlotSet("language", "en"),
                                                           UserUttered(text, parse["intent"], [], parse)])
    domain = Domain.from_yaml("version: '3.1'\nslots:\n  name:\n    type: text\n    mappings: []\n")
    action = ActionExtractSlots(EndpointConfig(f"http://127.0.0.1:{port}/webhook"))
    try:
        language_events = await action._run_custom_action("action_detect_language", None, None, tracker, domain)
        other_events = await action._run_custom_action("action_other", None, None, tracker, domain)
    finally:
        await runner.cleanup()
    assert language_events == [SlotSet("language", "rw")]
    assert other_events == [SlotSet("name", "Aline")]
    assert called == ["action_other"]


def _random_events(rng, count: int):
    """Events of the kinds applied_events treats specially, in random order (forms running,
    rejected, deactivated; reverts; restarts; new sessions)."""
    from rasa.shared.core.events import (ActionExecuted, ActionExecutionRejected, ActionReverted, ActiveLoop,
                                         Restarted, SessionStarted, SlotSet, UserUttered, UserUtteranceReverted)

    makers = [
        lambda: UserUttered(rng.choice(["7", "yes", "stop"]), {"name": "inform"}),
        lambda: ActionExecuted("action_listen"),
        lambda: ActionExecuted(rng.choice(["tutor_form", "name_form"])),
        lambda: ActionExecuted(rng.choice(["action_ask_answer", "action_greet", "validate_tutor_form"])),
        lambda: ActiveLoop(rng.choice(["tutor_form", "name_form", None])),
        lambda: ActionExecutionRejected(rng.choice(["tutor_form", "name_form"])),
        lambda: SlotSet("answer", rng.choice(["7", None])),
        lambda: ActionReverted(), lambda: UserUtteranceReverted(), lambda: Restarted(), lambda: SessionStarted(),
    ]
    weights = [6, 6, 6, 4, 3, 1, 3, 1, 1, 0.3, 0.3]
    return [rng.choices(makers, weights)[0]() for _ in range(count)]


def test_applied_events_are_rasas_however_the_tracker_grew():
    """`applied`: for random conversations, asked after every event (continuing from the
    remembered result) and at the end from scratch, the result is Rasa's own."""
    import random

    from rasa.shared.core.trackers import DialogueStateTracker

    rasas = DialogueStateTracker.applied_events.__wrapped__
    rng = random.Random(16)
    for _ in range(150):
        events = _random_events(rng, rng.randint(1, 60))
        growing = DialogueStateTracker("learner", [])
        for event in events:
            growing.update(event)
            first = growing.applied_events()
            assert first == rasas(growing)
            first.append("a caller's change")  # callers get their own list
            assert growing.applied_events() == rasas(growing)
        fresh = DialogueStateTracker.from_events("learner", events)
        assert fresh.applied_events() == rasas(fresh) == growing.applied_events()


def test_applied_events_of_a_tracker_whose_events_were_replaced():
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    rasas = DialogueStateTracker.applied_events.__wrapped__
    tracker = DialogueStateTracker.from_events("learner", [ActionExecuted("action_listen"), UserUttered("hi")])
    assert len(tracker.applied_events()) == 2
    tracker.events.clear()  # emptied, then the same number of events
    tracker.update(UserUttered("hello"))
    tracker.update(ActionExecuted("action_listen"))
    assert [getattr(e, "text", None) for e in tracker.applied_events()] == [e.text if hasattr(e, "text") else None
                                                                             for e in rasas(tracker)] == ["hello", None]
    tracker.events = tracker._create_events([ActionExecuted("action_greet")])  # a new deque
    assert tracker.applied_events() == rasas(tracker) == [ActionExecuted("action_greet")]
    bounded = DialogueStateTracker("learner", [], max_event_history=3)  # the oldest events fall out
    for text in ("a", "b", "c", "d", "e"):
        bounded.update(UserUttered(text))
        assert bounded.applied_events() == rasas(bounded)
    assert [e.text for e in bounded.applied_events()] == ["c", "d", "e"]


# --------------------------------------------------------------------------- install()
def _patched_methods():
    from rasa.core.actions.action import ActionExtractSlots, RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import FailSafeTrackerStore
    from rasa.utils.tensorflow.models import RasaModel

    return {
        "run": RemoteAction.run, "format": RemoteAction._action_call_format,
        "extract": ActionExtractSlots._run_custom_action,
        "validate": RemoteAction._validate_action_result, "parse": MessageProcessor.parse_message,
        "save": MessageProcessor.save_tracker, "failsafe": FailSafeTrackerStore.on_tracker_store_error,
        "load": RasaModel.load,
    }


def test_install_is_idempotent():
    before = _patched_methods()
    assert rasa_patches.install() == rasa_patches.installed() == ["failsafe", "timing", "schema", "events", "pool",
                                                                   "window", "slotmap", "nlucache", "applied", "states", "askskip",
                                                                   "gcfreeze", "fastload"]
    assert _patched_methods() == before  # nothing wrapped twice
    assert getattr(before["parse"], "__bakame_timed__", False)


def test_another_rasa_version_is_refused_and_nothing_is_patched(monkeypatch):
    import rasa

    before = _patched_methods()
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    monkeypatch.setattr(rasa_patches, "_installed", [])  # as in a fresh process
    with pytest.raises(rasa_patches.UnsupportedRasa, match=r"written for Rasa 3\.6\.21 and this is Rasa 3\.7\.0"):
        rasa_patches.install()
    assert rasa_patches.installed() == []
    assert _patched_methods() == before


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k not in ("RASA_SPEEDUPS", "ACTION_EVENTS_TURNS")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**inherited, "PYTHONPATH": str(ROOT), **env})


def test_the_launcher_refuses_another_rasa_version_in_one_line():
    result = _python("import rasa; rasa.__version__ = '3.7.0'\n"
                     "from infra.rasa_main import main; main(['run', '--model', 'models/bakame.tar.gz'])")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "infra.rasa_main: infra/rasa_patches.py was written for Rasa 3.6.21 and this is Rasa 3.7.0: nothing was "
        "patched. Check each patch against Rasa 3.7.0, then change RASA_VERSION."]


def test_rasa_speedups_selects_the_speedups_and_the_fixes_stay(monkeypatch):
    expected = {"": ["failsafe", "timing"], "pool, window": ["failsafe", "timing", "pool", "window"],
                "pool,pool,failsafe": ["failsafe", "timing", "pool"], "pool,nosuch": ["failsafe", "timing", "pool"],
                "slotmap,nlucache,applied": ["failsafe", "timing", "slotmap", "nlucache", "applied"]}
    for chosen, names in expected.items():
        monkeypatch.setenv("RASA_SPEEDUPS", chosen)
        assert rasa_patches.selected() == names, chosen
    monkeypatch.delenv("RASA_SPEEDUPS")
    assert rasa_patches.selected() == list(rasa_patches.FIXES + rasa_patches.SPEEDUPS)
    # and install() in a fresh process installs what was selected (only that)
    code = "from infra import rasa_patches; print(rasa_patches.install())"
    assert _python(code, RASA_SPEEDUPS="pool,pool,failsafe").stdout.strip() == "['failsafe', 'timing', 'pool']"


# --------------------------------------------------------------------------- every start
# A Rasa Core start (run, shell, interactive, test) that is not `python -m infra.rasa_main`:
# `rasa run actions` (rasa_sdk) and `rasa test nlu` (no dialogue) need no patches.
DIRECT_COMMAND = re.compile(r"(?:^|[\s;&|(])(?:\S*/)?(?:rasa|\$\(RASA\))\s+(?:run|shell|interactive|test)\b"
                            r"(?!\s+(?:actions|nlu)\b)")
DIRECT_ARGV = re.compile(r"""["']rasa["']\)?\s*,\s*["'](?:run|shell|interactive|test)["']"""
                         r"""(?!\s*,\s*["'](?:actions|nlu)["'])""")
START_FILES = ("scripts/run.sh", "Dockerfile", "docker-compose.yml", "Makefile", "mk/workflows.mk",
               "bench/rasa_launcher.py", "tests/stack.py", "tests/test_production_stack.py",
               "tests/test_reviewer_shell.py")


def test_the_static_check_recognises_a_direct_start():
    for direct in (".venv/bin/rasa run --model m", "$(RASA) shell --model m", "\trasa test core --stories s"):
        assert DIRECT_COMMAND.search(direct), direct
    for direct in ('[str(VENV_BIN / "rasa"), "run", "--model"', 'CMD ["rasa", "run", "--model"'):
        assert DIRECT_ARGV.search(direct), direct
    for fine in ("rasa run actions --actions actions", "$(RASA) test nlu --nlu d", "python -m infra.rasa_main run",
                 '[str(VENV_BIN / "rasa"), "run", "actions"', '["rasa", "run", "actions", "--port"'):
        assert not DIRECT_COMMAND.search(fine) and not DIRECT_ARGV.search(fine), fine


def test_every_rasa_start_goes_through_the_launcher():
    commands = [ROOT / name for name in ("Dockerfile", "docker-compose.yml", "Makefile")]
    commands += sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "mk").glob("*.mk"))
    commands += sorted((ROOT / "deploy").rglob("*.service")) + sorted((ROOT / "deploy").rglob("*.yaml"))  # scale-out
    code = [p for d in ("bench", "scripts", "tests") for p in sorted((ROOT / d).glob("*.py"))
            if p.name != "test_rasa_patches.py"]
    direct = []
    for path in commands + code:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if path in commands and line.lstrip().startswith("#"):
                continue
            if (path in commands and DIRECT_COMMAND.search(line)) or DIRECT_ARGV.search(line):
                direct.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert direct == []
    for name in START_FILES:
        assert "infra.rasa_main" in (ROOT / name).read_text() or "RASA_MAIN" in (ROOT / name).read_text(), name


# --------------------------------------------------------------------------- e2e
class RecordingProxy:
    """Between Rasa and the real action server: forwards every call, keeps what Rasa sent."""

    def __init__(self, target: str) -> None:
        self.calls: List[dict] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # /health
                self._answer(requests.get(target.rsplit("/", 1)[0] + self.path, timeout=30))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.calls.append(json.loads(body))
                self._answer(requests.post(target, data=body, headers={"Content-Type": "application/json"},
                                           timeout=60))

            def _answer(self, response: requests.Response) -> None:
                self.send_response(response.status_code)
                self.send_header("Content-Type", response.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.e2e
def test_the_make_run_stack_sends_the_action_server_the_last_three_turns(tmp_path):
    """tests/stack.py starts Rasa as `make run` does (the launcher, endpoints.yml-like
    defaults); before issue 12 only endpoints.prod.yml got the window. Rasa keeps the whole
    conversation; the real action server gets the last 3 learner turns and the full state,
    and still answers as before."""
    ensure_model()
    env = stack_env(tmp_path)
    actions = Stack(workdir=tmp_path, env=env)
    actions.start_actions()
    proxy = RecordingProxy(f"http://127.0.0.1:{actions.actions_port}/webhook")
    rasa = Stack(workdir=tmp_path, env=env, actions_port=proxy.port)
    try:
        rasa.start_rasa()
        said = ["hi", "I am Eric", "hello", "hey there", "good morning"]
        replies, calls_by_turn = [], []
        for text in said:
            first = len(proxy.calls)
            replies.append(rasa.texts("window-learner", text))
            calls_by_turn.append(proxy.calls[first:])
        conversation = requests.get(f"{rasa.url}/conversations/window-learner/tracker", timeout=30).json()
    finally:
        rasa.stop()
        actions.stop()
        proxy.server.shutdown()
    assert [e["text"] for e in conversation["events"] if e["event"] == "user"] == said  # Rasa keeps everything
    assert replies[1][0] == "Nice to meet you, Eric!" and replies[4][0] == "Welcome back, Eric!"

    def user_texts(call: dict) -> List[str]:
        return [e["text"] for e in call["tracker"]["events"] if e["event"] == "user"]

    assert all(len(user_texts(call)) <= 3 for turn in calls_by_turn for call in turn)
    turn2 = [c for c in calls_by_turn[1] if c["tracker"]["latest_message"]["text"] == said[1]]
    assert turn2 and all(user_texts(c) == said[:2] for c in turn2)  # short conversations: as Rasa sends them
    turn5 = [c for c in calls_by_turn[4] if c["tracker"]["latest_message"]["text"] == said[4]]
    assert turn5 and all(user_texts(c) == said[2:] for c in turn5)
    assert all(c["tracker"]["slots"]["name"] == "Eric" for c in turn5)  # the state in full


# --------------------------------------------------------------------------- fastload
async def test_a_model_loaded_fast_predicts_exactly_as_rasa_loads_it():
    """``fastload``: the one-example fit that creates DIET's weights runs eagerly. The model
    so loaded must parse every message exactly as the model Rasa loads its own way: same
    intents, same ranking and confidences, same entities -- on public messages nobody on
    BAKAME wrote (tests/data/language_id_heldout.csv) and on commands and answers."""
    import csv

    from rasa.core.agent import load_agent
    from rasa.utils.tensorflow.models import RasaModel

    model = str(ensure_model())
    with open(ROOT / "tests" / "data" / "language_id_heldout.csv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))][1:]
    texts = [r[-1] for r in rows[::8]] + ["I want to do math", "ndashaka imibare", "seven", "it is 12", "ni 7",
                                          "sinzi", "stop", "repeat", "my name is Amina", "1", "2"]
    assert len(texts) > 100

    async def parses(agent):
        return [await agent.parse_message(text) for text in texts]

    patched = RasaModel.__dict__["load"]  # the classmethod itself: subclasses must get their own cls
    original = getattr(patched.__func__, "__bakame_original__", None)
    assert original is not None  # installed by the fixture
    fast = await parses(await load_agent(model_path=model))
    RasaModel.load = classmethod(original)
    try:
        rasas = await parses(await load_agent(model_path=model))
    finally:
        RasaModel.load = patched
    for mine, theirs in zip(fast, rasas):
        assert mine["intent"] == theirs["intent"], mine["text"]
        assert [(r["name"], r["confidence"]) for r in mine["intent_ranking"]] == \
            [(r["name"], r["confidence"]) for r in theirs["intent_ranking"]], mine["text"]
        assert mine["entities"] == theirs["entities"], mine["text"]
    assert len({p["intent"]["name"] for p in fast}) >= 5  # the messages exercise the model


def test_fastload_leaves_fine_tuning_to_rasa(monkeypatch):
    """A model loaded to be fine-tuned (``rasa train --finetune``) takes Rasa's own path."""
    from rasa.utils.tensorflow.models import RasaModel

    calls = []
    fake_original = lambda cls, *args, **kwargs: calls.append(args) or "rasa's"  # noqa: E731
    load = rasa_patches._fast_model_load(fake_original)
    assert load(RasaModel, "weights", "example", None, True) == "rasa's"
    assert calls == [("weights", "example", None, True)]


def test_deployment_files_select_every_speedup():
    """docker-compose.yml, the Kubernetes config and .env.example name the speed-ups
    explicitly: they must name all of them (a new one is not silently left out in production)."""
    wanted = ",".join(rasa_patches.SPEEDUPS)
    for path, pattern in (("docker-compose.yml", r"RASA_SPEEDUPS-([\w,]+)\}"),
                          ("deploy/k8s/config.yaml", r"RASA_SPEEDUPS:\s*([\w,]+)"),
                          (".env.example", r"^RASA_SPEEDUPS=([\w,]+)")):
        found = re.search(pattern, (ROOT / path).read_text(), re.M)
        assert found and found.group(1) == wanted, path

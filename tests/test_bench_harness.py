"""The benchmark harness' pure parts (bench/): percentile math, Twilio request signing and
TwiML parsing, server-side log parsing, result tables. Nothing here is timed and no server
is started (``make bench`` does that)."""
import base64
import hashlib
import hmac
import json

import pytest
from twilio.request_validator import RequestValidator

from bench import report, serverside, stats, twilio


# --------------------------------------------------------------------------- percentiles
def test_percentile_interpolates_like_numpy_linear():
    values = [15, 20, 35, 40, 50]
    assert stats.percentile(values, 0) == 15
    assert stats.percentile(values, 100) == 50
    assert stats.percentile(values, 50) == 35
    assert stats.percentile(values, 40) == pytest.approx(29.0)  # rank 1.6 -> 20 + 0.6 * 15
    assert stats.percentile(values, 95) == pytest.approx(48.0)
    assert stats.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_percentile_edge_cases():
    assert stats.percentile([], 50) is None
    assert stats.percentile([7.5], 99) == 7.5
    assert stats.percentile([3, 1, 2], 50) == 2  # unsorted input
    with pytest.raises(ValueError):
        stats.percentile([1, 2], 101)


def test_summarise_in_milliseconds():
    s = stats.summarise([0.1, 0.2, 0.3, 0.4])
    assert s["count"] == 4
    assert s["p50_ms"] == 250.0
    assert s["mean_ms"] == 250.0
    assert s["max_ms"] == 400.0
    assert stats.summarise([])["p95_ms"] is None


def test_throughput_counts_completions_inside_the_window():
    assert stats.throughput([0.5, 1.0, 1.5, 2.0, 9.0], start=1.0, end=3.0) == 1.5
    assert stats.throughput([1.0], start=2.0, end=2.0) == 0.0


def test_window_stats_around_a_turn_number():
    # (turn index, started, finished): two learners, turns of 0.1 s, one after the other
    turns = [(i, i * 0.1, i * 0.1 + 0.1) for i in range(1, 31)] + [(i, i * 0.1, i * 0.1 + 0.2) for i in range(1, 31)]
    w = stats.window_stats(turns, center=10, half_width=2)
    assert w["count"] == 10  # turns 8..12 of both learners
    assert w["window"] == [8, 12]
    assert w["p50_ms"] == pytest.approx(150.0)
    assert w["turns_per_s"] == pytest.approx(10 / (1.4 - 0.8), abs=0.01)
    assert stats.window_stats(turns, center=100, half_width=2)["turns_per_s"] is None


def test_ratio():
    assert stats.ratio(110.0, 100.0) == 1.1
    assert stats.ratio(None, 100.0) is None
    assert stats.ratio(1.0, 0) is None


# --------------------------------------------------------------------------- Twilio signing
TOKEN = "12345"
BASE = "https://mycompany.com"


def test_signature_is_twilios_algorithm():
    """base64(HMAC-SHA1(token, full URL + each parameter name and value, sorted by name)),
    computed here by hand (https://www.twilio.com/docs/usage/security#validating-requests)."""
    params = {"To": "+18005551212", "CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030"}
    url = BASE + "/myapp.php?foo=1&bar=2"
    payload = url + "".join(k + params[k] for k in sorted(params))
    expected = base64.b64encode(hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()
    signer = twilio.Signer(TOKEN, BASE)
    assert signer.sign("/myapp.php?foo=1&bar=2", params) == expected == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_signed_request_validates_with_the_connectors_validator():
    signer = twilio.Signer("bench-token", "https://bakame.example.org/")
    params = twilio.sms_params("+250788123456", "ni 7", twilio.sid("SM", "x", 1))
    path, body, headers = signer.request(twilio.SMS_PATH, params)
    assert path == twilio.SMS_PATH
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    validator = RequestValidator("bench-token")
    from urllib.parse import parse_qs

    form = parse_qs(body.decode(), keep_blank_values=True)  # as connectors.security reads it
    from sanic.request import RequestParameters

    form = RequestParameters(form)  # what the connectors hand to the validator
    assert validator.validate("https://bakame.example.org" + twilio.SMS_PATH, form, headers["X-Twilio-Signature"])
    assert not validator.validate("https://other.example.org" + twilio.SMS_PATH, form, headers["X-Twilio-Signature"])
    assert form["FromZip"] == [""]  # blank parameters are signed too


def test_voice_requests_follow_the_gather_action_url():
    signer = twilio.Signer("t", "https://bakame.example.org")
    action = "https://bakame.example.org/webhooks/twilio_voice/webhook?step=input"
    assert signer.local_path(action) == "/webhooks/twilio_voice/webhook?step=input"
    assert signer.local_path("/webhooks/twilio_voice/webhook?step=input") == "/webhooks/twilio_voice/webhook?step=input"
    params = twilio.voice_params("+250788000001", "CA" + "1" * 32, speech="seven", confidence=0.9)
    assert params["SpeechResult"] == "seven" and params["Confidence"].startswith("0.9")
    _, _, headers = signer.request(signer.local_path(action), params)
    assert RequestValidator("t").validate(action, params, headers["X-Twilio-Signature"])


def test_ids_are_stable_and_twilio_shaped():
    assert twilio.sid("SM", "run", 1) == twilio.sid("SM", "run", 1) != twilio.sid("SM", "run", 2)
    assert len(twilio.sid("CA", "x")) == 34
    number = twilio.learner_number("run", 3)
    assert number.startswith("+2507") and len(number) == 13 and number == twilio.learner_number("run", 3)


def test_parse_twiml():
    voice = ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="https://x/webhooks/twilio_voice/webhook'
             '?step=input" input="dtmf speech"><Say voice="Polly.Amy">What is 3 plus 2?</Say></Gather></Response>')
    t = twilio.parse_twiml(voice)
    assert t.valid and t.says == ["What is 3 plus 2?"] and t.gather_action.endswith("step=input")
    sms = "<Response><Message>Correct! +10 points.</Message></Response>"
    assert twilio.parse_twiml(sms).messages == ["Correct! +10 points."]
    hang = "<Response><Say>Goodbye!</Say><Hangup/></Response>"
    assert twilio.parse_twiml(hang).hangup
    assert not twilio.parse_twiml("not xml").valid
    assert twilio.parse_twiml("<Response/>").texts == []


# --------------------------------------------------------------------------- server-side logs
def test_parse_turn_lines_and_split():
    lines = [
        "2026-11-21 14:08:17,453 [INFO ]  turn channel=twilio_sms conv=tw_18bb8c6c stt_ms=0 nlu_ms=86 policy_ms=15 "
        "nlu_policy_ms=101 actions_ms=905 rasa_ms=1043 total_ms=1049 kind=text messages=2 over_budget=false",
        "2026-11-21 14:08:17,735 [INFO ]  turn channel=twilio_voice conv=tw_18bb8c6c asr_ms=120 tts_ms=40 nlu_ms=34 "
        "policy_ms=5 nlu_policy_ms=39 actions_ms=178 rasa_ms=230 total_ms=399 kind=record messages=2 over_budget=false",
        "2026-11-21 14:08:18,000 [INFO ]  something else",
    ]
    rows = serverside.parse_turn_lines(lines)
    assert len(rows) == 2 and rows[0]["nlu_ms"] == 86 and rows[1]["channel"] == "twilio_voice"
    split = serverside.split_for_window(rows, rows[0]["t"] - 1, rows[1]["t"] + 1)
    assert split["turns"] == 2
    assert split["nlu"]["mean_ms"] == 60.0 and split["actions"]["p50_ms"] == pytest.approx(541.5)
    assert split["asr"]["mean_ms"] == 120.0 and split["tts"]["mean_ms"] == 40.0  # lines without them: not counted
    assert serverside.split_for_window(rows, 0, 1) is None


def test_action_timings_per_action_and_request_size_by_turn(tmp_path):
    lines = []
    for turn in range(1, 6):
        for sender in ("a", "b"):
            lines.append([100.0 + turn, "action_detect_language", 0.5, 0.1, 1000 * turn, 28, 200, sender])
            lines.append([100.0 + turn, "validate_tutor_form", 10.0 + turn, 0.2, 1000 * turn + 500, 90, 200, sender])
    (tmp_path / "actions-1.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    rows = serverside.read_action_timings(tmp_path)
    assert len(rows) == 20
    per = serverside.actions_for_window(rows, 0, 1000)
    assert per["validate_tutor_form"]["calls"] == 10 and per["validate_tutor_form"]["p50_ms"] == 13.0
    sizes = serverside.request_kb_by_turn(rows, 0, 1000, [1, 5, 6])
    assert sizes[1] == pytest.approx(1000 / 1024, abs=0.05) and sizes[5] == pytest.approx(4.9, abs=0.05)
    assert sizes[6] is None
    without_language_calls = [r for r in rows if r[1] != "action_detect_language"]  # Rasa decides it (issue 16)
    sizes = serverside.request_kb_by_turn(without_language_calls, 0, 1000, [1, 5])
    assert sizes[1] == pytest.approx(1500 / 1024, abs=0.05) and sizes[5] == pytest.approx(5500 / 1024, abs=0.05)


# --------------------------------------------------------------------------- report
def _results():
    phase = {"name": "closed-twilio-25", "channel": "twilio", "mode": "closed", "concurrency": 25, "period_s": None,
             "p50_ms": 120.0, "p95_ms": 250.5, "p99_ms": 300.0, "turns_per_s": 61.25, "count": 900, "errors": 0,
             "cpu_ms_per_turn": {"rasa": 20.0, "action_server": 2.0, "redis": 1.0, "postgres": 2.0},
             "cpu": {"others_cores": 0.1},
             "by_kind": {"sms": {"p50_ms": 110.0, "p95_ms": 200.0}, "voice": {"p50_ms": 130.0, "p95_ms": 260.0}},
             "rasa_split": {"nlu": {"mean_ms": 20.0}, "policy": {"mean_ms": 5.0}, "actions": {"mean_ms": 50.0},
                            "rasa": {"mean_ms": 90.0}, "total": {"mean_ms": 100.0}}}
    rest = dict(phase, channel="rest", name="closed-rest-25", p50_ms=110.0, by_kind=None, rasa_split=None)
    return {
        "run_id": "r1", "label": "test", "git": {"commit": "abc", "dirty_files": 0},
        "machine": {"cpus": 2, "cpu_model": "X", "mem_gib": 8, "rasa": "3.6.21", "rasa_sdk": "3.6.2", "python": "3.10"},
        "config": {"stack_description": "prod", "rasa_workers": 2, "action_workers": 1, "llm_delay": 1.5},
        "noise": {"loadavg": {"min": 0.1, "max": 2.0, "mean": 1.0}, "others_cores_mean": 0.2, "others_cores_max": 0.5},
        "load": [phase, rest],
        "overhead": [{"mode": "closed", "concurrency": 25, "twilio_p50_ms": 120.0, "rest_p50_ms": 110.0,
                      "ratio_p50": 1.091, "twilio_p95_ms": 250.5, "rest_p95_ms": 240.0, "ratio_p95": 1.04,
                      "ratio_throughput": 1.0}],
        "nlu": {"count": 100, "p50_ms": 12.3, "p95_ms": 20.0, "p99_ms": 25.0, "mean_ms": 13.0},
        "actions": {"validate_tutor_form": {"calls": 10, "p50_ms": 5.0, "p95_ms": 9.0, "decode_p50_ms": 0.2,
                                            "request_kb_mean": 20.0, "request_kb_max": 40.0}},
        "long_session": [{"channel": "sms", "learners": 4, "turns_each": 310, "errors": 0, "completed": True,
                          "growth_p50": 1.1,
                          "checkpoints": [{"turn": 10, "p50_ms": 100.0, "p95_ms": 150.0, "turns_per_s": 30.0,
                                           "action_request_kb": 12.0},
                                          {"turn": 300, "p50_ms": 110.0, "p95_ms": 160.0, "turns_per_s": 28.0,
                                           "action_request_kb": 14.0}]}],
        "llm_voice": {"concurrency": 25, "period_s": 3.0, "errors": 0,
                      "llm_turns": {"count": 40, "p50_ms": 1700.0, "p95_ms": 1900.0, "max_ms": 2100.0},
                      "non_llm_turns": {"p50_ms": 100.0}},
        "training": {"seconds": 300.0, "peak_mib": 2000.0, "model_mib": 49.3},
        "memory": {"rasa": {"peak_mib": 1200.0, "children": {"1": {"peak_mib": 1100.0}}}},
        "startup_s": {"rasa": 40.0},
        "targets": [{"target": "p95 < 300 ms", "measured": "p95 250 ms", "met": True},
                    {"target": "60 turns/s", "measured": "61 turns/s", "met": False}],
    }


def test_render_contains_every_table_with_the_figures():
    md = report.render(_results())
    for heading in ("#### Targets", "#### Turn latency and throughput", "#### Connector overhead", "Where a Twilio",
                    "#### NLU alone", "action server's own time", "#### Long session", "call the LLM",
                    "#### Training, model, memory"):
        assert heading in md, heading
    assert "| twilio | 25 | back to back | 120 | 250 | 300 | 61.2 | 900 | 0 | 20 | 2 | 3 | 0.10 |" in md
    assert "| 25 | back to back | 120 | 110 | 1.09 |" in md
    assert "| p95 < 300 ms | p95 250 ms | yes |" in md and "| 60 turns/s | 61 turns/s | **no** |" in md
    assert "1.10× the latency" in md
    assert "1,200 MiB (+ 1 worker(s): 1,100 MiB)" in md
    # every table row has as many cells as its header
    for block in md.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({row.count("|") for row in rows}) == 1, block


def test_fmt_and_table():
    assert report.fmt(None) == "–"
    assert report.fmt(1234.4) == "1,234"
    assert report.fmt(1.234, 2) == "1.23"
    assert report.fmt(True) == "yes" and report.fmt(False) == "**no**"
    assert report.table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_update_doc_replaces_only_the_generated_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    report.update_doc(doc, "first table")
    text = doc.read_text()
    assert text.startswith("# Benchmarks") and "first table" in text
    doc.write_text("# Benchmarks\n\nMethod written by hand.\n\n" + text.split("# Benchmarks", 1)[1] + "\nAfter.\n")
    report.update_doc(doc, "second table")
    text = doc.read_text()
    assert "Method written by hand." in text and "After." in text
    assert "second table" in text and "first table" not in text
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    report.update_doc(doc, "proposed table", section="proposed")
    report.update_doc(doc, "third table")
    text = doc.read_text()
    assert "proposed table" in text and "third table" in text and "second table" not in text
    assert text.count(report.markers("proposed")[0]) == 1


def test_render_a_long_session_stopped_at_the_time_limit():
    results = _results()
    results["long_session"] = [{
        "channel": "sms", "learners": 4, "turns_each": 310, "errors": 3, "completed": False, "reached_turn": 140,
        "elapsed_s": 360.0, "growth_p50": 12.5, "cpu_ms_per_turn": {"rasa": 400.0, "action_server": 12.0},
        "checkpoints": [{"turn": 10, "p50_ms": 300.0, "p95_ms": 400.0, "turns_per_s": 10.0},
                        {"turn": 100, "p50_ms": 3000.0, "p95_ms": 4000.0, "turns_per_s": 1.0},
                        {"turn": 135, "p50_ms": 3750.0, "p95_ms": 5000.0, "turns_per_s": 0.8, "reached_only": True}],
    }]
    md = report.render(results)
    assert "| 135 (furthest reached) | 3,750 |" in md
    assert "stopped after 360 s at turn 140 of 310" in md
    assert "CPU per turn over the whole session: Rasa 400 ms" in md


def test_the_cpu_ratio_target_divides_a_twilio_turn_by_a_parse():
    from bench.run import evaluate_targets, turn_to_parse_cpu

    def phase(channel, mode, concurrency, rasa_ms):
        return {"channel": channel, "mode": mode, "concurrency": concurrency, "period_s": 2.0, "p95_ms": 100.0,
                "errors": 0, "turns_per_s": 10.0, "cpu_ms_per_turn": {"rasa": rasa_ms}}

    results = {"nlu": {"rasa_cpu_ms_per_parse": 10.0}, "load": [
        phase("rest", "closed", 1, 5.0), phase("twilio", "paced", 25, 30.0), phase("twilio", "closed", 100, 18.0),
        phase("twilio", "closed", 1, 25.0)]}
    ratio = turn_to_parse_cpu(results)
    assert ratio["ratio"] == 2.5  # one learner back to back: 25 / 10
    assert ratio["text"] == ("2.50x at 1 learner(s) closed: 25.0 ms per turn / 10.0 ms per parse; "
                             "other Twilio phases 1.80x (100 closed), 3.00x (25 paced)")
    row = [t for t in evaluate_targets(results) if "/model/parse" in t["target"]]
    assert len(row) == 1 and row[0]["met"] is False
    results["load"][3]["cpu_ms_per_turn"]["rasa"] = 20.0
    assert [t["met"] for t in evaluate_targets(results) if "/model/parse" in t["target"]] == [True]
    assert turn_to_parse_cpu({"load": results["load"]}) is None  # no NLU phase: no row


def test_connector_overhead_rows_compare_cpu_of_every_tier():
    from bench.run import overhead_rows

    def phase(channel, p50, rasa, actions, redis, postgres):
        return {"channel": channel, "mode": "closed", "concurrency": 25, "p50_ms": p50, "p95_ms": p50 * 2,
                "turns_per_s": 50.0, "cpu_ms_per_turn": {"rasa": rasa, "action_server": actions,
                                                          "load_generator": 9.0, "stack": rasa + actions,
                                                          "redis": redis, "postgres": postgres}}

    [row] = overhead_rows([phase("twilio", 120.0, 18.0, 7.0, 1.5, 0.5), phase("rest", 100.0, 15.0, 7.0, 1.0, 0.5)])
    assert (row["twilio_cpu_ms"], row["rest_cpu_ms"]) == (27.0, 23.5)  # the load generator is not a tier
    assert row["ratio_cpu"] == pytest.approx(27.0 / 23.5, abs=0.01) and row["ratio_p50"] == pytest.approx(1.2)
    [no_cpu] = overhead_rows([dict(phase("twilio", 1.0, 1, 1, 1, 1), cpu_ms_per_turn={}),
                              phase("rest", 1.0, 1, 1, 1, 1)])
    assert no_cpu["ratio_cpu"] is None


def _said(learner, turns=30):
    out = []
    for _ in range(turns):
        out.append(learner.next_message())
        learner.turns += 1
        learner.turns_in_call += 1
    return out


def test_rest_learners_are_the_twilio_learners_twins():
    """The overhead baseline holds the same conversations: REST learner i sends exactly what
    Twilio learner i sends (number words for voice learners, a call start), same seed."""
    from bench.learners import make_learners

    signer = twilio.Signer("token", "https://bench.example")
    mix = lambda seed, shares: make_learners(shares, 8, "run", "http://x", signer, seed=seed)  # noqa: E731
    tw = mix("s1", {"sms": 0.5, "voice": 0.5})
    rest = mix("s1", {"rest:sms": 0.5, "rest:voice": 0.5})
    assert [l.kind for l in rest] == ["rest"] * 8
    assert [(l.speaks_as, l.language) for l in rest] == [(l.kind, l.language) for l in tw]
    for a, b in zip(tw, rest):
        assert _said(a) == _said(b)
    voice = [_said(l) for l in mix("s1", {"rest:sms": 0.5, "rest:voice": 0.5}) if l.speaks_as == "voice"]
    assert all(said[0] is None for said in voice)  # a call starts first
    assert any(word in said for said in voice for word in ("one", "seven", "twenty", "twelve"))
    sms = [_said(l) for l in mix("s1", {"rest:sms": 1.0})]
    assert all(said[0] is not None for said in sms)
    assert sms != [_said(l) for l in mix("s2", {"rest:sms": 1.0})]  # another seed, other conversations
    with pytest.raises(ValueError):
        make_learners({"sms:voice": 1.0}, 1, "r", "http://x", signer)


async def test_a_rest_voice_twin_starts_calls_and_hangs_up_like_the_voice_channel():
    """Call start = ``/session_start`` with ``call_start`` metadata (what the voice channel
    sends Rasa); a reply ending the call makes the twin call again."""
    from aiohttp import ClientSession, web

    from bench.learners import Learner

    seen = []
    replies = [[{"recipient_id": "x", "text": "Welcome back"}],
               [{"recipient_id": "x", "text": "Bye"}, {"recipient_id": "x", "custom": {"end_call": True}}],
               [{"recipient_id": "x", "text": "Welcome back"}]]

    async def webhook(request):
        seen.append(await request.json())
        return web.json_response(replies[len(seen) - 1])

    app = web.Application()
    app.router.add_post(twilio.REST_PATH, webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        learner = Learner("rest", "r", 0, f"http://127.0.0.1:{port}", twilio.Signer("t", "https://b"),
                          speaks_as="voice")
        async with ClientSession() as session:
            first = await learner.turn(session)
            second = await learner.turn(session)
            third = await learner.turn(session)
    finally:
        await runner.cleanup()
    assert seen[0] == {"sender": learner.sender, "message": "/session_start", "metadata": {"call_start": True}}
    assert first.ok and first.step == "call_start"
    assert seen[1]["message"] == "I want to do math" and "metadata" not in seen[1]
    assert second.ok and second.ended  # the bot hung up: not an error, a new call follows
    assert third.step == "call_start" and seen[2]["message"] == "/session_start"


def test_the_warm_up_vocabulary_holds_every_text_a_learner_sends():
    """The NLU cache is primed with ``vocabulary()``: no phase pays for a first parse."""
    from bench.learners import make_learners, vocabulary

    known = set(vocabulary())
    signer = twilio.Signer("token", "https://bench.example")
    for scenario in ("math", "debate"):
        for shares in ({"sms": 0.5, "voice": 0.5}, {"rest:sms": 0.5, "rest:voice": 0.5}):
            for learner in make_learners(shares, 12, "v", "http://x", signer, scenario=scenario, seed=scenario):
                said = {t for t in _said(learner, 200) if t is not None}
                assert said <= known, said - known
    assert len(known) == len(vocabulary())  # each once


def test_connector_overhead_target_is_the_geometric_mean_of_the_tiers():
    from bench.run import evaluate_targets, overhead_target
    from bench.stats import geometric_mean

    def row(p50, cpu, concurrency):
        return {"mode": "closed", "concurrency": concurrency, "ratio_p50": p50, "ratio_cpu": cpu}

    # one tier over 1.10, the mean of the tiers within: met, each tier shown beside the mean
    target = overhead_target([row(1.06, 1.03, 1), row(0.90, 1.09, 25), row(1.32, 1.12, 100)])
    assert target["met"] is True
    assert target["measured"].startswith("p50 1.08 (tiers: 1.06 (1 closed), 0.90 (25 closed), 1.32 (100 closed))")
    assert "CPU per turn, all tiers: 1.08 (1.03, 1.09, 1.12)" in target["measured"]
    # the p50 mean within 10 %, the CPU mean not: not met
    assert overhead_target([row(1.05, 1.12, 1), row(1.05, 1.12, 25)])["met"] is False
    assert overhead_target([row(1.12, 1.0, 1), row(1.10, 1.0, 25)])["met"] is False
    # no CPU figures (a machine without the meter): p50 alone decides
    assert overhead_target([row(1.05, None, 1)])["met"] is True
    assert geometric_mean([None, 0, None]) is None and geometric_mean([2.0, 0.5]) == 1.0
    [row_] = [t for t in evaluate_targets({"overhead": [row(1.2, 1.2, 1)]}) if "connector" in t["target"]]
    assert row_["met"] is False


def test_twilio_and_rest_take_turns_running_first_tier_by_tier():
    from bench.run import phase_order

    specs = [("closed", 1, 20.0, None), ("closed", 25, 20.0, None), ("paced", 25, 30.0, 2.0)]
    order = phase_order(specs)
    assert [(mode, n, channel) for mode, n, _, _, channel in order] == [
        ("closed", 1, "twilio"), ("closed", 1, "rest"), ("closed", 25, "rest"), ("closed", 25, "twilio"),
        ("paced", 25, "twilio"), ("paced", 25, "rest")]
    assert [o[:4] for o in order[::2]] == specs  # every tier, with its duration and period, once per channel


def test_every_target_is_shown_beside_its_before_figure_from_the_baseline_file():
    from bench.run import evaluate_targets, load_baseline, with_baseline

    baseline = load_baseline()  # bench/baseline.yml, the starting point
    assert baseline["run"] == "20261121-183351"
    results = _results()
    results["overhead"][0]["ratio_cpu"] = 1.02
    results["long_session"][0]["growth_p50"] = 1.1
    results["nlu"]["rasa_cpu_ms_per_parse"] = 10.0
    results["load"].append(dict(results["load"][0], name="paced-twilio-100", mode="paced", concurrency=100,
                                period_s=2.0))
    targets = evaluate_targets(results)
    keys = [t["key"] for t in targets]
    assert len(keys) == len(set(keys)) == 6  # one row per target, each with its own key
    assert set(keys) == set(baseline["figures"])  # every target has a before figure, and only targets do
    assert [t["before"] for t in targets if t["key"] == "throughput"] == ["49.0 turns/s"]
    results["targets"] = targets
    md = report.render(results)
    assert "| target | before (`20261121-183351`) | measured | met |" in md
    throughput = next(line for line in md.splitlines() if line.startswith("| sustained throughput"))
    assert "| 49.0 turns/s |" in throughput
    # without a baseline (or a target it does not name): the table as before, no empty column
    assert with_baseline([{"key": "new", "target": "t", "measured": "m", "met": True}], baseline)[0].get("before") is None
    results["targets"] = with_baseline([{"key": "x", "target": "t", "measured": "m", "met": True}], {})
    assert "| target | measured | met |" in report.render(results)


def test_a_saved_run_is_rendered_again_with_the_targets_this_code_evaluates(tmp_path, capsys):
    from bench.run import main

    results = _results()
    results["targets"] = [{"target": "an old target", "measured": "m", "met": True}]
    saved = tmp_path / "20260101-000000.json"
    saved.write_text(json.dumps(results))
    assert main(["--render", str(saved), "--no-docs"]) == 0
    again = json.loads(saved.read_text())
    assert "an old target" not in {t["target"] for t in again["targets"]}
    assert {t["key"] for t in again["targets"]} >= {"throughput", "overhead", "llm_voice"}
    md = saved.with_suffix(".md").read_text()
    assert "| target | before (`20261121-183351`) | measured | met |" in md and md in capsys.readouterr().out

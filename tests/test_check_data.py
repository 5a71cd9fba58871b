"""scripts/check_data.py: each kind of mistake in a small broken project is reported with
file:line and what to fix, and the real project passes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_data  # noqa: E402

EN = {
    "greet": [f"hello number {i}" for i in range(25)],
    "ask_time": [f"what time is it {i}" for i in range(25)],
}
RW = {
    "greet": [f"muraho nimero {i}" for i in range(25)],
    "ask_time": [f"ni saa ngahe {i}" for i in range(25)],
}

DOMAIN = """\
version: "3.1"
intents:
  - greet
  - ask_time
forms:
  name_form:
    required_slots:
      - name
slots:
  name:
    type: text
    mappings:
      - type: from_text
actions:
  - action_greet
  - action_ask_name
responses:
  utter_time:
    - condition:
        - type: slot
          name: language
          value: rw
      text: "Sinzi isaha, mbabarira."
    - text: "I do not know the time, sorry."
"""

RULES = """\
version: "3.1"
rules:
  - rule: greet
    steps:
      - intent: greet
      - action: action_greet
  - rule: time
    steps:
      - intent: ask_time
      - action: utter_time
"""

ACTIONS = '''\
from rasa_sdk import Action


class ActionGreet(Action):
    def name(self):
        return "action_greet"


class ActionAskName(Action):
    def name(self):
        return "action_ask_name"
'''

MESSAGES = """\
hello:
  en: "Hello!"
  rw: "Muraho!"
"""


def nlu(examples: dict) -> str:
    out = 'version: "3.1"\nnlu:\n'
    for intent, texts in examples.items():
        out += f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
    return out


def make_project(tmp_path: Path, *, domain=DOMAIN, rules=RULES, en=None, rw=None, actions=ACTIONS,
                 messages=MESSAGES) -> Path:
    root = tmp_path / "project"
    (root / "data" / "nlu" / "en").mkdir(parents=True)
    (root / "data" / "nlu" / "rw").mkdir(parents=True)
    (root / "actions" / "content").mkdir(parents=True)
    (root / "domain.yml").write_text(domain)
    (root / "data" / "rules.yml").write_text(rules)
    (root / "data" / "nlu" / "en" / "nlu.yml").write_text(nlu(EN if en is None else en))
    (root / "data" / "nlu" / "rw" / "nlu.yml").write_text(nlu(RW if rw is None else rw))
    (root / "actions" / "__init__.py").write_text("")
    (root / "actions" / "actions.py").write_text(actions)
    (root / "actions" / "content" / "messages.yml").write_text(messages)
    return root


def findings(root: Path, code: str):
    return [f for f in check_data.check_project(root).findings if f.code == code]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_clean_small_project_passes(tmp_path):
    report = check_data.check_project(make_project(tmp_path))
    assert report.findings == []
    assert report.counts == {"ask_time": {"en": 25, "rw": 25}, "greet": {"en": 25, "rw": 25}}


def test_response_without_kinyarwanda_is_reported_at_its_line(tmp_path):
    domain = DOMAIN.replace(
        '    - condition:\n        - type: slot\n          name: language\n          value: rw\n'
        '      text: "Sinzi isaha, mbabarira."\n', "")
    root = make_project(tmp_path, domain=domain)
    [finding] = findings(root, "missing-translation")
    assert finding.path == "domain.yml"
    assert finding.line == line_of(root / "domain.yml", "utter_time:")
    assert "utter_time" in finding.message and "Kinyarwanda" in finding.message and "value: rw" in finding.message
    assert finding.level == check_data.ERROR


def test_response_without_english_default_is_reported(tmp_path):
    domain = DOMAIN.replace('    - text: "I do not know the time, sorry."\n', "")
    [finding] = findings(make_project(tmp_path, domain=domain), "missing-default")
    assert "utter_time" in finding.message


def test_a_single_text_in_both_languages_counts_as_translated(tmp_path):
    domain = DOMAIN.split("responses:")[0] + (
        'responses:\n  utter_time:\n    - text: "Muraho! Hello! Ndi BAKAME, inshuti yawe. I am BAKAME, your friend."\n')
    assert findings(make_project(tmp_path, domain=domain), "missing-translation") == []


def test_message_without_kinyarwanda_is_reported(tmp_path):
    root = make_project(tmp_path, messages=MESSAGES + 'bye:\n  en: "Bye!"\n')
    [finding] = findings(root, "missing-translation")
    assert finding.path == "actions/content/messages.yml"
    assert finding.line == line_of(root / "actions/content/messages.yml", "bye:")
    assert "'rw'" in finding.message


def test_intent_missing_in_one_language(tmp_path):
    root = make_project(tmp_path, rw={"greet": RW["greet"]})
    [finding] = findings(root, "intent-missing-language")
    assert "ask_time" in finding.message and "Kinyarwanda" in finding.message and "data/nlu/rw" in finding.message
    assert finding.line == line_of(root / "domain.yml", "- ask_time")


def test_too_few_examples(tmp_path):
    root = make_project(tmp_path, rw={"greet": RW["greet"], "ask_time": RW["ask_time"][:10]})
    [finding] = findings(root, "too-few-examples")
    assert finding.path == "data/nlu/rw/nlu.yml"
    assert finding.line == line_of(root / "data/nlu/rw/nlu.yml", "intent: ask_time")
    assert "only 10" in finding.message and "add 15 more" in finding.message


def test_same_example_under_two_intents(tmp_path):
    rw = {"greet": RW["greet"], "ask_time": RW["ask_time"][:24] + ["[Muraho](name) nimero 3!"]}
    root = make_project(tmp_path, rw=rw)
    [finding] = findings(root, "duplicate-example")
    assert "'greet'" in finding.message and "'ask_time'" in finding.message
    assert finding.path == "data/nlu/rw/nlu.yml"
    assert finding.line == line_of(root / "data/nlu/rw/nlu.yml", "[Muraho](name) nimero 3!")
    assert f"data/nlu/rw/nlu.yml:{line_of(root / 'data/nlu/rw/nlu.yml', 'muraho nimero 3')}" in finding.message


def test_same_example_across_languages_under_two_intents(tmp_path):
    en = {"greet": EN["greet"][:24] + ["ni saa ngahe 7"], "ask_time": EN["ask_time"]}
    assert len(findings(make_project(tmp_path, en=en), "duplicate-example")) == 1


def test_response_too_long_for_one_sms(tmp_path):
    long_text = "Sinzi isaha. " + "Ongera ubaze nyuma gato. " * 7
    root = make_project(tmp_path, domain=DOMAIN.replace("Sinzi isaha, mbabarira.", long_text.strip()))
    [finding] = findings(root, "too-long-sms")
    assert finding.line == line_of(root / "domain.yml", "Sinzi isaha.") - 4  # the variation starts at `- condition`
    assert "over one SMS (160)" in finding.message


def test_non_gsm_character_is_reported(tmp_path):
    root = make_project(tmp_path, domain=DOMAIN.replace("I do not know the time, sorry.", "I don’t know the time — sorry."))
    [finding] = findings(root, "not-gsm")
    assert "’" in finding.message and "—" in finding.message


def test_voice_only_message_too_long_for_a_call(tmp_path):
    words = " ".join(["press one for math"] * 12)
    root = make_project(tmp_path, messages=MESSAGES + f'call_intro:\n  en: "{words}"\n  rw: "Muraho"\n')
    [finding] = findings(root, "too-long-voice")
    assert "call_intro" in finding.message and "48 words" in finding.message
    assert findings(root, "too-long-sms") == []  # call_* messages are never sent by SMS


MATH_TEXTS = """\
# a tutor keeps its phrases next to its content, under texts:
texts:
  intro:
    en: "Welcome to math! You are at level {level}."
    rw: "Ikaze mu mibare! Uri ku rwego rwa {level}."
  praise:
    en: ["Correct!", "Well done!"]
    rw: ["Ni byo!", "Ni byiza cyane!"]
levels: {}
"""


def with_math_texts(root: Path, texts: str = MATH_TEXTS) -> Path:
    (root / "actions" / "content" / "math.yml").write_text(texts)
    return root


def test_every_catalogue_is_checked_not_only_messages(tmp_path):
    root = with_math_texts(make_project(tmp_path))
    assert check_data.check_project(root).findings == []
    assert check_data.check_project(root).checked["texts"] == 3  # hello, math.intro, math.praise


def test_tutor_text_without_kinyarwanda_is_reported_at_its_line(tmp_path):
    root = with_math_texts(make_project(tmp_path),
                           MATH_TEXTS.replace('    rw: "Ikaze mu mibare! Uri ku rwego rwa {level}."\n', ""))
    [finding] = findings(root, "missing-translation")
    assert finding.path == "actions/content/math.yml"
    assert finding.line == line_of(root / "actions/content/math.yml", "intro:")
    assert "'math.intro'" in finding.message and "'rw' (Kinyarwanda)" in finding.message


def test_variants_missing_in_one_language_are_reported(tmp_path):
    root = with_math_texts(make_project(tmp_path), MATH_TEXTS.replace('["Ni byo!", "Ni byiza cyane!"]', '["Ni byo!"]'))
    [finding] = findings(root, "missing-translation")
    assert "'math.praise'" in finding.message and "en has 2, rw has 1" in finding.message


def test_non_gsm_character_in_a_tutor_text_is_reported_at_its_line(tmp_path):
    root = with_math_texts(make_project(tmp_path), MATH_TEXTS.replace("Well done!", "Well done 🎉"))
    [finding] = findings(root, "not-gsm")
    assert finding.path == "actions/content/math.yml"
    assert finding.line == line_of(root / "actions/content/math.yml", "Well done")
    assert "'math.praise' (en)" in finding.message and "GSM-7" in finding.message


def test_tutor_text_too_long_for_one_sms(tmp_path):
    long_rw = "Ikaze mu mibare! " + "Subiza buri kibazo ukoresheje umubare. " * 4 + "{level}"
    root = with_math_texts(make_project(tmp_path), MATH_TEXTS.replace("Ikaze mu mibare! Uri ku rwego rwa {level}.", long_rw))
    [finding] = findings(root, "too-long-sms")
    assert finding.line == line_of(root / "actions/content/math.yml", "Subiza buri kibazo")
    assert "'math.intro' (rw)" in finding.message and "over one SMS (160)" in finding.message


def test_channel_sms_text_is_not_held_to_the_voice_limit(tmp_path):
    words = " ".join(["send zero to see the menu"] * 7)  # 42 words, 181 characters
    root = make_project(tmp_path)
    (root / "actions" / "content" / "channel.yml").write_text(
        f'sms_menu:\n  en: "{words}"\n  rw: "Ohereza 0"\nholding:\n  en: "{words}"\n  rw: "Tegereza"\n')
    assert [f.message.split(" is ")[0] for f in findings(root, "too-long-voice")] == ["message 'channel.holding' (en)"]
    assert len(findings(root, "too-long-sms")) == 2  # sms_menu and holding both go out by SMS


def test_broken_placeholder_is_reported(tmp_path):
    root = with_math_texts(make_project(tmp_path), MATH_TEXTS.replace("rwa {level}.", "rwa {level."))
    [finding] = findings(root, "bad-placeholder")
    assert "'math.intro' (rw)" in finding.message


def test_a_key_the_code_looks_up_must_exist(tmp_path):
    actions = ACTIONS + (
        "\n\nfrom core import texts\n\n"
        "def hello(lang):\n    return texts.text(\"hello\", lang), texts.text(\"helo\", lang), texts.text(\"x.\" + lang, lang)\n")
    root = make_project(tmp_path, actions=actions)
    [finding] = findings(root, "unknown-text")
    assert finding.path == "actions/actions.py" and finding.line == line_of(root / "actions/actions.py", "helo")
    assert "'helo'" in finding.message


def test_language_slot_must_take_the_supported_languages(tmp_path):
    slot = "  language:\n    type: categorical\n    values: [en]\n    mappings:\n      - type: custom\n"
    root = make_project(tmp_path, domain=DOMAIN.replace("\nslots:\n", "\nslots:\n" + slot))
    [finding] = findings(root, "language-slot")
    assert finding.line == line_of(root / "domain.yml", "type: categorical") - 1
    assert "['en']" in finding.message and "['en', 'rw']" in finding.message
    assert findings(make_project(tmp_path / "ok", domain=DOMAIN.replace(
        "\nslots:\n", "\nslots:\n" + slot.replace("[en]", "[rw, en]"))), "language-slot") == []


def test_unimplemented_action_in_rules(tmp_path):
    rules = RULES + "  - rule: time told\n    steps:\n      - intent: ask_time\n      - action: action_tell_time\n"
    root = make_project(tmp_path, rules=rules)
    found = findings(root, "unimplemented-action")
    assert [(f.path, f.line) for f in found] == [("data/rules.yml", line_of(root / "data/rules.yml", "action_tell_time"))]
    assert "action_tell_time" in found[0].message and "domain.yml" in found[0].message


def test_unimplemented_action_listed_in_domain(tmp_path):
    root = make_project(tmp_path, actions=ACTIONS.split("class ActionAskName")[0])
    messages = [f.message for f in check_data.check_project(root).errors]
    assert any("action 'action_ask_name' is listed in domain.yml but not implemented" in m for m in messages)
    # ...and the form now has no question for its slot either
    assert any("form 'name_form' asks for slot 'name'" in m for m in messages)


def test_response_used_in_a_story_but_missing(tmp_path):
    rules = RULES.replace("utter_time", "utter_the_time")
    [finding] = findings(make_project(tmp_path, rules=rules), "missing-response")
    assert "utter_the_time" in finding.message


def test_cli_prints_file_line_and_exits_1(tmp_path):
    root = make_project(tmp_path, rw={"greet": RW["greet"], "ask_time": RW["ask_time"][:3]})
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_data.py"), "--project-dir", str(root)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "data/nlu/rw/nlu.yml:" in run.stdout and " — intent 'ask_time' has only 3 Kinyarwanda examples" in run.stdout
    assert "1 error(s)" in run.stdout


def test_the_real_project_passes():
    report = check_data.check_project(ROOT)
    assert report.errors == [], "\n".join(map(str, report.errors))
    assert report.counts and all(n >= check_data.MIN_EXAMPLES for per in report.counts.values() for n in per.values())


@pytest.mark.parametrize("text,expected", [("[Aline](name) ni 7!", "aline ni 7"), ("  Hello   there. ", "hello there")])
def test_plain_text(text, expected):
    assert check_data.plain_text(text) == expected


def test_help_text_mentions_docs():
    assert "docs/designers.md" in textwrap.dedent(check_data.__doc__)

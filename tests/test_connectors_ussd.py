"""The USSD channel in a Sanic app with the scripted tutor (tests/connector_fixtures.py):
requests exactly as the aggregator posts them (tests/aggregator_fixtures.py)."""
import pytest

from aggregator_fixtures import FormPoster, UssdPhone, fresh_number
from connector_fixtures import SENDER_SECRET, ScriptedAgent, make_app
from connectors.security import SenderIdHasher
from connectors.settings import UssdSettings
from connectors.state import InMemoryStateStore
from connectors.ussd import UssdInput

pytestmark = pytest.mark.asyncio
SECRET = "ussd-callback-secret-0123456789"


def setup(agent=None, **overrides):
    agent = agent or ScriptedAgent()
    settings = dict(sender_id_secret=SENDER_SECRET, timing_instrumentation=False)
    settings.update(overrides)
    channel = UssdInput(UssdSettings(**settings), store=InMemoryStateStore())
    return agent, channel, FormPoster(make_app([channel], agent))


async def test_language_choice_then_math_answered_on_the_keypad():
    agent, _, poster = setup()
    phone = UssdPhone(poster, fresh_number())
    assert "1 Kinyarwanda" in await phone.dial() and "2 English" in phone.screen
    await phone.enter("2")
    assert agent.received[0].text == '/set_language{"language": "en"}'
    screen = await phone.enter("00")  # the menu
    assert "1 Math" in screen and "9 Kinyarwanda" in screen
    screen = await phone.enter("1")
    assert "What is 3 + 4?" in screen and "01 hint" in screen
    screen = await phone.enter("7")
    assert "Correct! Well done." in screen and "What is 5 + 2?" in screen
    assert [m.text for m in agent.received[-2:]] == ["/start_math", "7"]
    assert all(m.input_channel == "ussd" and m.metadata["channel"] == "ussd" for m in agent.received)


async def test_only_the_last_entry_of_the_history_is_new_and_a_retry_shows_the_same_screen():
    agent, _, poster = setup()
    phone = UssdPhone(poster, fresh_number())
    await phone.dial()
    await phone.enter("1")
    await phone.enter("00")
    await phone.enter("1")
    before = len(agent.received)
    shown = phone.screen
    assert await phone.repost() == shown and len(agent.received) == before  # no second turn
    screen = await phone.enter("0")  # 0 is a math answer, not "back"
    assert agent.received[-1].text == "0" and "Si byo" in screen


async def test_math_keys_hint_and_menu_are_not_answers():
    agent, _, poster = setup()
    phone = UssdPhone(poster, fresh_number())
    await phone.dial()
    await phone.enter("2")
    await phone.enter("00")
    await phone.enter("1")
    await phone.enter("01")
    assert agent.received[-1].text == "/request_hint"
    await phone.enter("00")
    assert agent.received[-1].text == "/stop"
    assert phone.ended and phone.screen == "Goodbye!"  # the scripted tutor ends the call: END on USSD


async def test_long_texts_are_paged_with_next_and_back():
    agent, _, poster = setup()
    story = " ".join(f"Sentence number {i} of the long story about Keza at the market." for i in range(12))
    agent.script = lambda m: [{"text": story}] if m.text == "/start_reading" else [{"text": "OK."}]
    agent.state  # the scripted tutor keeps language None: screens are bilingual then
    phone = UssdPhone(poster, fresh_number())
    await phone.dial()
    await phone.enter("2")
    await phone.enter("00")
    first = await phone.enter("3")
    assert first.startswith("Sentence number 0") and first.endswith("1 next")
    pages = [first]
    while phone.screen.endswith(("1 next", "0 back")):
        pages.append(await phone.enter("1"))
    assert len(pages) >= 4 and all(len(p) <= 182 for p in pages)
    assert "Sentence number 11" in pages[-1] and "1 Math" in pages[-1]
    back = await phone.enter("0")
    assert back == pages[-2]
    words = " ".join(p.replace("1 next", "").replace("0 back", "") for p in pages).split()
    assert all(f"{i}" in words for i in range(12))


async def test_a_session_over_its_budget_ends_and_the_next_dial_resumes(monkeypatch):
    agent, channel, poster = setup(session_budget=30)
    number = fresh_number()
    phone = UssdPhone(poster, number)
    await phone.dial()
    await phone.enter("2")
    await phone.enter("00")
    question = await phone.enter("1")
    import connectors.ussd as ussd

    later = ussd.time.time() + 31
    monkeypatch.setattr(ussd.time, "time", lambda: later)
    ended = await phone.enter("8")  # a wrong answer, still counted
    assert phone.ended and "Dial *384*1234# again" in ended
    assert agent.received[-1].text == "8"
    monkeypatch.undo()
    agent.state[SenderIdHasher(SENDER_SECRET).sender_id(number)]["language"] = "en"
    resume = await phone.dial()
    assert "1 Continue math" in resume
    shown = await phone.enter("1")
    assert "Not quite, try again." in shown and "01 hint" in shown
    assert "What is 3 + 4?" in question
    correct = await phone.enter("7")
    assert "Correct!" in correct


async def test_the_same_number_is_the_same_learner_as_on_twilio():
    agent, _, poster = setup()
    number = fresh_number()
    await UssdPhone(poster, number).dial()
    phone = UssdPhone(poster, number)
    await phone.dial()
    await phone.enter("1")
    assert agent.received[-1].sender_id == SenderIdHasher(SENDER_SECRET).sender_id(number)
    assert number not in repr([m.metadata for m in agent.received])


async def test_only_allowed_sources_with_the_secret_path_are_answered():
    agent, _, poster = setup(callback_secret=SECRET, allowed_sources=("196.201.214.0/24",))
    form = UssdPhone(poster, fresh_number()).form()
    form["sessionId"] = "ATUid_x"
    ok = await poster.post(f"/webhooks/ussd/webhook/{SECRET}", form, client_ip="196.201.214.10")
    assert ok.status_code == 200 and ok.text.startswith("CON")
    for path, ip in ((f"/webhooks/ussd/webhook/{SECRET}", "203.0.113.9"),  # other address
                     (f"/webhooks/ussd/webhook/{SECRET}", "127.0.0.1"),  # loopback is not allowed now
                     ("/webhooks/ussd/webhook/wrong-secret", "196.201.214.10"),
                     ("/webhooks/ussd/webhook", "196.201.214.10")):
        response = await poster.post(path, form, client_ip=ip)
        assert response.status_code == 403, (path, ip)
    assert agent.received == []


async def test_without_a_secret_only_loopback_is_answered():
    _, _, poster = setup()
    form = {"sessionId": "s1", "serviceCode": "*1#", "phoneNumber": fresh_number(), "text": ""}
    assert (await poster.post("/webhooks/ussd/webhook", form, client_ip="10.0.0.8")).status_code == 403
    assert (await poster.post("/webhooks/ussd/webhook", form)).status_code == 200


async def test_behind_a_proxy_the_forwarded_address_counts_only_when_trusted():
    _, _, poster = setup(callback_secret=SECRET, allowed_sources=("196.201.214.0/24",), trust_proxy=True)
    form = {"sessionId": "s2", "serviceCode": "*1#", "phoneNumber": fresh_number(), "text": ""}
    path = f"/webhooks/ussd/webhook/{SECRET}"
    ok = await poster.post(path, form, headers={"X-Forwarded-For": "1.2.3.4, 196.201.214.7"}, client_ip="10.0.0.2")
    forged = await poster.post(path, form, headers={"X-Forwarded-For": "196.201.214.7, 1.2.3.4"},
                               client_ip="10.0.0.2")
    assert ok.status_code == 200 and forged.status_code == 403


async def test_production_refuses_to_start_without_secret_and_sources():
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException, match="AT_CALLBACK_SECRET"):
        UssdSettings(production=True, sender_id_secret="a-long-random-sender-secret", allowed_sources=("1.2.3.0/24",))
    with pytest.raises(InvalidConfigException, match="AT_ALLOWED_SOURCES"):
        UssdSettings(production=True, sender_id_secret="a-long-random-sender-secret", callback_secret=SECRET)
    with pytest.raises(InvalidConfigException, match="SENDER_ID_SECRET"):
        UssdSettings(production=True, callback_secret=SECRET, allowed_sources=("1.2.3.0/24",))
    assert UssdSettings(production=True, sender_id_secret="a-long-random-sender-secret", callback_secret=SECRET,
                        allowed_sources=("1.2.3.0/24",)).production


def test_a_production_start_needs_the_callback_secret_only_when_the_channels_are_mounted(tmp_path):
    from infra import settings

    twilio_only = tmp_path / "twilio.yml"
    twilio_only.write_text("connectors.twilio_sms.TwilioSmsInput:\n  production: true\n")
    with_ussd = tmp_path / "ussd.yml"
    with_ussd.write_text("connectors.ussd.UssdInput:\n  production: true\n")
    assert "AT_CALLBACK_SECRET" not in settings.required_secrets(twilio_only)
    assert "AT_CALLBACK_SECRET" in settings.required_secrets(with_ussd)
    problems = settings.secret_problems({"AT_CALLBACK_SECRET": "short"}, ["AT_CALLBACK_SECRET"])
    assert problems == ["AT_CALLBACK_SECRET is shorter than 16 characters"]

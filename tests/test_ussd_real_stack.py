"""USSD and the aggregator's SMS against the real assistant (trained model, action server, the
channels of credentials.yml), with requests exactly as the aggregator posts them and the SMS
SDK pointed at a local fake API. The learner is the same on every channel: USSD, then a
Twilio call (signed as Twilio signs) greets them by name with the same progress."""
import asyncio
import json
import re
import time
import uuid

import pytest

from aggregator_fixtures import FakeAtApi, FormPoster, UssdPhone, at_sms_form, fresh_number
from connector_fixtures import TwilioClient
from infra.redis_client import redis_client
from tests.stack import Stack, ensure_model, stack_env
from tests.test_connectors_e2e import Phone, answer_until_praised, is_praise, solve

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]
TOKEN = "ussd-stack-twilio-token"
SECRET = "ussd-stack-callback-secret-0123"
SENDER_SECRET = "ussd-stack-sender-secret-0123"
REDIS = "redis://127.0.0.1:6379/0"
PREFIX = "test" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def at_api():
    api = FakeAtApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, at_api):
    ensure_model()
    workdir = tmp_path_factory.mktemp("ussd-stack")
    stack = Stack(workdir=workdir, env={})
    stack.env = stack_env(
        workdir, TWILIO_AUTH_TOKEN=TOKEN, SENDER_ID_SECRET=SENDER_SECRET, PUBLIC_BASE_URL=stack.url,
        AT_CALLBACK_SECRET=SECRET, AT_ALLOWED_SOURCES="127.0.0.1/32", AT_TRUST_PROXY="true",
        AT_USERNAME="bakame", AT_API_KEY="fake-at-key", AT_SMS_SENDER="4321", AT_API_BASE_URL=at_api.base,
        REDIS_URL=REDIS, REDIS_KEY_PREFIX=PREFIX)
    stack.start()
    yield stack
    stack.stop()


def ussd_phone(stack, number=None):
    return UssdPhone(FormPoster(server_url=stack.url), number or fresh_number(), path=f"/webhooks/ussd/webhook/{SECRET}")


async def read_on(phone):
    """Every page from the current one on (entering "1" while a page says next)."""
    pages = [phone.screen]
    while re.search(r"\n1 (next|komeza)( 0 (back|subira))?$", phone.screen):
        pages.append(await phone.enter("1"))
    return pages


def content(pages):
    """The pages without their last line (the choices: "01 hint, 00 menu" are not the question's numbers)."""
    return [page.rsplit("\n", 1)[0] for page in pages]


async def onboard(phone, language, name):
    screen = await phone.dial()
    assert "1 Kinyarwanda" in screen and "2 English" in screen
    screen = await phone.enter("1" if language == "rw" else "2")
    assert ("Andika izina" if language == "rw" else "Type your name") in screen, screen
    pages = [await phone.enter(name)] + (await read_on(phone))[1:]
    assert name in " ".join(pages) and ("1 Imibare" if language == "rw" else "1 Math") in pages[-1], pages


async def math_by_keypad(phone):
    """From the menu: start math and answer (typed digits) until praised; the praise screen."""
    await phone.enter("1")
    question = content(await read_on(phone))
    assert solve(question) is not None, question

    async def answer(value):
        await phone.enter(value)
        return content(await read_on(phone))

    return await answer_until_praised(answer, question)


@pytest.mark.parametrize("language", ["en", "rw"])
async def test_a_ussd_session_completes_math_by_keypad(stack, language):
    phone = ussd_phone(stack)
    await onboard(phone, language, "Amina" if language == "rw" else "Eric")
    praised = await math_by_keypad(phone)
    assert is_praise(praised) and ("01 inama" if language == "rw" else "01 hint") in phone.screen
    assert all(len(screen) <= 182 for screen in phone.screens)


async def test_a_story_is_paged_and_its_question_answered(stack):
    phone = ussd_phone(stack)
    await onboard(phone, "rw", "Keza")
    await phone.enter("3")  # reading
    pages = await read_on(phone)
    assert len(pages) >= 2 and pages[0].endswith("1 komeza") and "Andika igisubizo" in pages[-1]
    back = await phone.enter("0")
    assert back == pages[-2]
    await phone.enter("1")
    reply = await phone.enter("ku isoko")
    assert reply and not phone.ended


async def test_a_timed_out_session_ends_and_the_next_dial_resumes(stack):
    number = fresh_number()
    phone = ussd_phone(stack, number)
    await onboard(phone, "en", "Grace")
    await phone.enter("1")
    question = content(await read_on(phone))
    # the operator's clock: this session started long ago (the channel keeps it in Redis)
    client = redis_client(REDIS)
    key = f"bakame:twilio:ussd:session:{phone.session}"
    session = json.loads(await client.get(key))
    session["started_at"] = time.time() - 3600
    await client.set(key, json.dumps(session), ex=600)
    ended = await phone.enter(str(solve(question)))
    assert phone.ended and "Dial *384*1234# again" in ended
    resume = await phone.dial()
    assert "Welcome back, Grace!" in resume and "1 Continue" in resume
    await phone.enter("1")
    shown = content(await read_on(phone))  # the screen the timeout cut off: the praise and the next question
    assert is_praise(shown) and solve(shown) is not None, shown


async def test_ussd_then_a_call_greets_by_name_with_the_same_progress(stack):
    number = fresh_number()
    phone = ussd_phone(stack, number)
    await onboard(phone, "en", "Jean")
    await math_by_keypad(phone)
    await phone.enter("00")  # leave math: the menu
    score = await phone.enter("5")  # my score
    points = re.search(r"Math: (\d+) points", score)
    assert points, score
    call = Phone(TwilioClient(server_url=stack.url, public_base=stack.url, token=TOKEN), number)
    heard = " ".join(await call.dial())
    assert "Jean" in heard, heard
    said = " ".join(await call.press("5"))
    assert f"Math: {points.group(1)} points" in said, said


async def test_an_sms_conversation_through_the_aggregator_completes_math(stack, at_api):
    number = fresh_number()
    poster = FormPoster(server_url=stack.url)
    path = f"/webhooks/at_sms/webhook/{SECRET}"

    async def send(text):
        before = len(at_api.to(number))
        response = await poster.post(path, at_sms_form(text, number))
        assert response.status_code == 200
        return (await at_api.wait_for(number, before + 1))[before:]

    assert await send("hello")
    assert "Ana" in " ".join(await send("Ana"))
    question = await send("1")

    async def answer(value):
        return [line for reply in await send(value) for line in reply.split("\n")]

    praised = await answer_until_praised(answer, [line for r in question for line in r.split("\n")])
    assert is_praise(praised)
    [confirmation] = await send("HAGARIKA")
    assert "TANGIRA" in confirmation or "START" in confirmation
    await poster.post(path, at_sms_form("imibare", number))
    await asyncio.sleep(3)
    assert at_api.to(number)[-1] == confirmation  # nothing after the opt-out


async def test_callbacks_from_other_addresses_get_403(stack):
    poster = FormPoster(server_url=stack.url)
    form = UssdPhone(poster, fresh_number()).form()
    form["sessionId"] = "ATUid_forged"
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    assert (await poster.post(f"/webhooks/ussd/webhook/{SECRET}", form, headers=forwarded)).status_code == 403
    assert (await poster.post("/webhooks/ussd/webhook/not-the-secret", form)).status_code == 403
    assert (await poster.post("/webhooks/at_sms/webhook", at_sms_form("hi", fresh_number()))).status_code == 403
    assert (await poster.post(f"/webhooks/ussd/webhook/{SECRET}", form)).status_code == 200

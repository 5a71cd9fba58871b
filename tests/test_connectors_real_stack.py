"""The scripted calls and SMS conversations of test_connectors_e2e, against the real
assistant: trained model, action server, both Twilio channels from credentials.yml, every
request signed as Twilio signs it."""
import pytest

from tests.stack import Stack, ensure_model, stack_env
from tests.test_connectors_e2e import (  # noqa: F401  (collected here against the real stack)
    test_call_in_english_completes_math_with_speech_and_keypad,
    test_call_in_kinyarwanda_completes_math_with_keypad_and_transcribed_speech,
    test_forged_requests_get_403_from_the_running_server,
    test_sms_conversation_completes_math_in_both_languages,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]
TOKEN = "real-stack-twilio-token"


@pytest.fixture(scope="module")
def real_stack(tmp_path_factory):
    ensure_model()
    workdir = tmp_path_factory.mktemp("twilio-stack")
    stack = Stack(workdir=workdir, env={})
    stack.env = stack_env(workdir, TWILIO_AUTH_TOKEN=TOKEN, SENDER_ID_SECRET="real-stack-secret",
                          PUBLIC_BASE_URL=stack.url, TWILIO_VALIDATE_SIGNATURE="true")
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def e2e_server_settings(real_stack):
    return {"url": real_stack.url, "public": real_stack.url, "token": TOKEN}


async def test_the_conversation_is_keyed_by_a_hash_never_the_number(real_stack):
    import requests

    from connectors.security import SenderIdHasher
    from tests.test_connectors_e2e import Texter, fresh_number, real_client

    number = fresh_number()
    texter = Texter(real_client({"url": real_stack.url, "public": real_stack.url, "token": TOKEN}), number)
    await texter.send("muraho")
    sender = SenderIdHasher("real-stack-secret").sender_id(number)
    tracker = requests.get(f"{real_stack.url}/conversations/{sender}/tracker", timeout=30).json()
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == ["muraho"]
    assert number not in str(tracker) and number[1:] not in str(tracker)

"""X-Twilio-Signature validation (requests signed exactly as Twilio signs them) and the
pseudonymous conversation id."""
from __future__ import annotations

import pytest

from connector_fixtures import (
    AUTH_TOKEN,
    CALL_SID,
    LEARNER,
    PUBLIC_BASE,
    SENDER_SECRET,
    ScriptedAgent,
    TwilioClient,
    call_params,
    make_app,
    sms_params,
)
from connectors.security import (
    DEV_SENDER_ID_SECRET,
    SenderIdHasher,
    TwilioRequestAuthenticator,
    normalise_number,
)
from connectors.settings import SmsSettings, VoiceSettings
from connectors.state import InMemoryStateStore
from connectors.twilio_sms import TwilioSmsInput
from connectors.twilio_voice import TwilioVoiceInput

pytestmark = pytest.mark.asyncio

VOICE = "/webhooks/twilio_voice/webhook"
SMS = "/webhooks/twilio_sms/webhook"


def channels(**overrides):
    settings = dict(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                    timing_instrumentation=False)
    settings.update(overrides)
    return (TwilioVoiceInput(VoiceSettings(**settings), store=InMemoryStateStore()),
            TwilioSmsInput(SmsSettings(**settings), store=InMemoryStateStore()))


def setup(**overrides):
    agent = ScriptedAgent()
    voice, sms = channels(**overrides)
    return agent, voice, sms, make_app([voice, sms], agent)


async def assert_untouched(agent, voice, sms):
    assert agent.received == []
    assert agent.tracker_store.retrieved == []
    assert len(voice.store) == 0 and len(sms.store) == 0


# ---------------------------------------------------------------------- valid / invalid
@pytest.mark.parametrize("path,params", [(VOICE, call_params(CallStatus="ringing")), (SMS, sms_params("hello"))])
async def test_correctly_signed_requests_are_accepted(path, params):
    agent, _, _, app = setup()
    response = await TwilioClient(app).post(path, params)
    assert response.status_code == 200
    assert len(agent.received) == 1


@pytest.mark.parametrize("path,params", [
    (VOICE, call_params(CallStatus="ringing")),
    (VOICE + "?step=input", call_params(SpeechResult="hi")),
    ("/webhooks/twilio_voice/status", call_params(CallStatus="completed")),
    (SMS, sms_params("hello")),
])
async def test_unsigned_requests_get_403_and_touch_no_conversation(path, params):
    agent, voice, sms, app = setup()
    response = await TwilioClient(app).post(path, params, sign=False)
    assert response.status_code == 403
    await assert_untouched(agent, voice, sms)


@pytest.mark.parametrize("path,params", [(VOICE, call_params(CallStatus="ringing")), (SMS, sms_params("hello"))])
async def test_forged_signatures_get_403(path, params):
    agent, voice, sms, app = setup()
    client = TwilioClient(app)
    wrong_token = TwilioClient(app, token="not-the-auth-token")
    assert (await wrong_token.post(path, params)).status_code == 403
    assert (await client.post(path, params, signature="c2lnbmF0dXJl")).status_code == 403
    # signed for another URL, or for other parameters (tampered body)
    assert (await client.post(path, params, signed_url=PUBLIC_BASE + "/elsewhere")).status_code == 403
    signature = client.signer.sign(PUBLIC_BASE + path, params)
    tampered = dict(params, From="+250700000000")
    assert (await client.post(path, tampered, signature=signature)).status_code == 403
    await assert_untouched(agent, voice, sms)


async def test_blank_parameters_are_part_of_the_signature():
    """Twilio signs ``Body=`` of a media-only SMS; Sanic's request.form would drop it."""
    agent, _, _, app = setup()
    params = sms_params("", NumMedia="1", MediaUrl0="https://api.twilio.com/m.jpg")
    response = await TwilioClient(app).post(SMS, params)
    assert response.status_code == 200 and "only read text" in response.text


async def test_signature_covers_the_query_string_of_action_urls():
    agent, _, _, app = setup()
    client = TwilioClient(app)
    params = call_params(Digits="1")
    signature = client.signer.sign(PUBLIC_BASE + VOICE + "?step=input", params)
    response = await client.post(VOICE + "?step=await&turn=x", params, signature=signature)
    assert response.status_code == 403 and agent.received == []


# ---------------------------------------------------------------------- reverse proxy
async def test_behind_a_proxy_the_public_base_url_is_validated():
    """Twilio signs https://bakame.example.org/...; Rasa is reached at http://rasa:5005/..."""
    agent, _, _, app = setup(public_base_url=PUBLIC_BASE)
    client = TwilioClient(app)
    response = await client.post(VOICE, call_params(CallStatus="ringing"), transport_base="http://rasa:5005")
    assert response.status_code == 200 and len(agent.received) == 1
    # the URL Rasa sees is not what Twilio signed: without PUBLIC_BASE_URL this fails
    agent, _, _, app = setup(public_base_url=None)
    response = await TwilioClient(app).post(VOICE, call_params(CallStatus="ringing"), transport_base="http://rasa:5005")
    assert response.status_code == 403 and agent.received == []


async def test_public_base_url_with_a_path_prefix():
    agent, _, _, app = setup(public_base_url="https://edu.example.org/bakame")
    client = TwilioClient(app)  # the proxy strips /bakame before passing the request on
    params = call_params(CallStatus="ringing")
    signature = client.signer.sign("https://edu.example.org/bakame" + VOICE, params)
    response = await client.post(VOICE, params, signature=signature, transport_base="http://rasa:5005")
    assert response.status_code == 200
    assert 'action="https://edu.example.org/bakame/webhooks/twilio_voice/webhook?step=input"' in response.text


async def test_trusted_forwarded_headers_rebuild_the_public_url():
    agent, _, _, app = setup(public_base_url=None, trust_proxy=True)
    client = TwilioClient(app)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bakame.example.org"}
    response = await client.post(SMS, sms_params("hi"), headers=headers, transport_base="http://rasa:5005")
    assert response.status_code == 200 and len(agent.received) == 1


async def test_forwarded_headers_are_ignored_unless_trusted():
    agent, _, _, app = setup(public_base_url=None, trust_proxy=False)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bakame.example.org"}
    response = await TwilioClient(app).post(SMS, sms_params("hi"), headers=headers, transport_base="http://rasa:5005")
    assert response.status_code == 403 and agent.received == []


async def test_direct_requests_validate_against_the_host_twilio_called():
    agent, _, _, app = setup(public_base_url=None)
    response = await TwilioClient(app, public_base="https://bakame.example.org").post(SMS, sms_params("hi"))
    assert response.status_code == 200


class _Request:
    def __init__(self, headers, path="/webhooks/twilio_sms/webhook", query=""):
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.path, self.query_string, self.scheme, self.host = path, query, "http", "rasa:5005"


async def test_public_url_reconstruction_variants():
    trusted = TwilioRequestAuthenticator(AUTH_TOKEN, trust_proxy=True)
    url = trusted.public_url(_Request({"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "a.org, b"}, query="x=1"))
    assert url == "https://a.org/webhooks/twilio_sms/webhook?x=1"
    url = trusted.public_url(_Request({"Forwarded": 'for=1.2.3.4;proto=https;host="c.org"'}))
    assert url == "https://c.org/webhooks/twilio_sms/webhook"
    url = trusted.public_url(_Request({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "d.org",
                                       "X-Forwarded-Port": "8443", "X-Forwarded-Prefix": "/bot"}))
    assert url == "https://d.org:8443/bot/webhooks/twilio_sms/webhook"
    plain = TwilioRequestAuthenticator(AUTH_TOKEN)
    assert plain.public_url(_Request({"X-Forwarded-Host": "evil.org"})) == "http://rasa:5005/webhooks/twilio_sms/webhook"


# ---------------------------------------------------------------------- configuration
async def test_validation_can_only_be_turned_off_explicitly_for_local_use():
    agent, voice, _, app = setup(validate_signature=False, auth_token=None, sender_id_secret=None)
    response = await TwilioClient(app).post(VOICE, call_params(CallStatus="ringing"), sign=False)
    assert response.status_code == 200
    assert agent.received[0].sender_id == SenderIdHasher(DEV_SENDER_ID_SECRET).sender_id(LEARNER)


async def test_missing_auth_token_fails_closed():
    agent, voice, sms, app = setup(auth_token=None)
    assert voice.auth.misconfigured
    response = await TwilioClient(app).post(SMS, sms_params("hi"))
    assert response.status_code == 403
    await assert_untouched(agent, voice, sms)


async def test_missing_sender_secret_answers_politely_without_touching_conversations():
    agent, voice, sms, app = setup(sender_id_secret=None)
    client = TwilioClient(app)
    response = await client.post(VOICE, call_params(CallStatus="ringing"))
    assert response.status_code == 200 and "<Hangup" in response.text
    response = await client.post(SMS, sms_params("hi"))
    assert response.status_code == 200 and "<Message>" in response.text
    await assert_untouched(agent, voice, sms)


async def test_environment_switches(monkeypatch):
    monkeypatch.setenv("TWILIO_VALIDATE_SIGNATURE", "false")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("SENDER_ID_SECRET", raising=False)
    monkeypatch.setenv("TWILIO_TRUST_PROXY", "true")
    sms = TwilioSmsInput.from_credentials({"timing_instrumentation": False})
    assert sms.auth.validate is False and sms.auth.trust_proxy is True and sms.hasher is not None
    monkeypatch.setenv("TWILIO_VALIDATE_SIGNATURE", "true")
    sms = TwilioSmsInput.from_credentials({"timing_instrumentation": False})
    assert sms.auth.validate is True and sms.hasher is None  # no dev default when validating


# ---------------------------------------------------------------------- conversation id
async def test_sender_id_is_a_keyed_hash_of_the_normalised_number():
    hasher = SenderIdHasher(SENDER_SECRET)
    sender = hasher.sender_id(LEARNER)
    assert sender.startswith("tw_") and len(sender) == 3 + 32
    assert LEARNER[1:] not in sender
    for variant in ("+250 788 123 456", "whatsapp:+250788123456", "00250788123456", "+250-788-123-456"):
        assert hasher.sender_id(variant) == sender
    assert SenderIdHasher("another-secret").sender_id(LEARNER) != sender
    assert hasher.sender_id("+250788123457") != sender


async def test_withheld_numbers_get_one_id_per_call():
    hasher = SenderIdHasher(SENDER_SECRET)
    a = hasher.sender_id("+266696687", fallback=CALL_SID)
    b = hasher.sender_id("anonymous", fallback="CA" + "9" * 32)
    assert a.startswith("tw_anon_") and a != b
    assert hasher.sender_id("", fallback=CALL_SID) == a


async def test_normalise_number():
    assert normalise_number(" tel:+250 (788) 123-456 ") == "+250788123456"
    assert normalise_number("client:Alice") == "client:alice"
    with pytest.raises(ValueError):
        SenderIdHasher("")


# ---------------------------------------------------------------------- one HMAC, the library's verdict
@pytest.mark.parametrize("signed_url,checked_url", [
    ("https://bakame.example.org/webhooks/twilio_sms/webhook", "https://bakame.example.org/webhooks/twilio_sms/webhook"),
    ("https://bakame.example.org:443/webhooks/twilio_sms/webhook", "https://bakame.example.org/webhooks/twilio_sms/webhook"),
    ("https://bakame.example.org/webhooks/twilio_sms/webhook", "https://bakame.example.org:443/webhooks/twilio_sms/webhook"),
    ("http://10.0.0.5:5005/webhooks/twilio_voice/webhook?step=input", "http://10.0.0.5:5005/webhooks/twilio_voice/webhook?step=input"),
    ("http://10.0.0.5/webhooks/twilio_voice/webhook?step=input", "http://10.0.0.5:80/webhooks/twilio_voice/webhook?step=input"),
    ("https://bakame.example.org/webhooks/twilio_sms/webhook", "https://bakame.example.org/webhooks/twilio_sms/webhook?x=1"),
    ("https://bakame.example.org:8443/webhooks/twilio_sms/webhook", "https://bakame.example.org/webhooks/twilio_sms/webhook"),
])
@pytest.mark.parametrize("token", [AUTH_TOKEN, "another-token"])
async def test_the_signature_check_agrees_with_twilios_validator(signed_url, checked_url, token):
    """The check computes one HMAC where ``RequestValidator.validate`` computes two (issue 16);
    its verdict must be the library's for every URL form Twilio may have signed."""
    from twilio.request_validator import RequestValidator

    params = sms_params("seven", FromZip="")
    signature = RequestValidator(token).compute_signature(signed_url, params)
    auth = TwilioRequestAuthenticator(AUTH_TOKEN)
    expected = RequestValidator(AUTH_TOKEN).validate(checked_url, params, signature)
    assert auth._signed(checked_url, params, signature) is expected
    assert auth._signed(checked_url, params, signature + "x") is False

"""Numbers at rest: AES-GCM, key ids, rotation and re-encryption, production refusal."""
from __future__ import annotations

import json
import uuid

import pytest
from rasa.shared.exceptions import InvalidConfigException

from connectors.settings import AtSmsSettings, VoiceSettings
from core.number_vault import NumberVault, VaultConfigError, new_key_spec, parse_keys
from infra.number_store import NumberStore, reencrypt
from infra.redis_client import redis_client
from infra.settings import secret_problems

NUMBER = "+250788123456"


def vault(*specs: str) -> NumberVault:
    return NumberVault(parse_keys(",".join(specs)))


def test_a_sealed_number_opens_only_with_its_key_and_its_context():
    k1 = new_key_spec("k1")
    sealed = vault(k1).seal(NUMBER, "tw_a")
    assert sealed.startswith("k1:") and "788123456" not in sealed
    assert vault(k1).seal(NUMBER, "tw_a") != sealed  # a fresh nonce each time
    assert vault(k1).open(sealed, "tw_a") == NUMBER
    assert vault(k1).open(sealed, "tw_b") is None  # copied onto another learner's record
    assert vault(new_key_spec("k1")).open(sealed, "tw_a") is None  # another key of the same name
    assert vault(new_key_spec("k9")).open(sealed, "tw_a") is None
    assert vault(k1).open(sealed[:-4] + "AAAA", "tw_a") is None
    assert vault(k1).open("garbage", "tw_a") is None


def test_rotation_seals_with_the_first_key_and_opens_with_any():
    k1, k2 = new_key_spec("k1"), new_key_spec("k2")
    old = vault(k1).seal(NUMBER, "tw_a")
    rotated = vault(k2, k1)
    assert rotated.open(old, "tw_a") == NUMBER
    fresh = rotated.reseal(old, "tw_a")
    assert fresh.startswith("k2:") and vault(k2).open(fresh, "tw_a") == NUMBER
    assert rotated.reseal(fresh, "tw_a") == fresh


@pytest.mark.parametrize("spec,problem", [
    ("k1", "pairs"), ("k1:notbase64!", "base64"), ("k1:" + "QUJD", "32 bytes"),
    (new_key_spec("k1") + "," + new_key_spec("k1"), "twice"),
])
def test_bad_keys_are_named(spec, problem):
    with pytest.raises(VaultConfigError, match=problem):
        parse_keys(spec)


def test_without_keys_only_a_development_key_derived_from_a_secret():
    assert NumberVault.from_env("dev-secret", environ={}).current == "dev"
    with pytest.raises(VaultConfigError):
        NumberVault.from_env(None, environ={})


async def test_reencrypt_moves_every_stored_number_to_the_new_key():
    client = redis_client("redis://127.0.0.1:6379/0")
    prefix = f"test{uuid.uuid4().hex[:8]}"
    k1, k2 = new_key_spec("k1"), new_key_spec("k2")
    outbox = f"{prefix}:at_sms:outbox"
    try:
        await NumberStore(client, vault(k1), f"{prefix}:outreach").keep("tw_a", NUMBER)
        await client.rpush(outbox, json.dumps({"sender_id": "tw_b", "to": vault(k1).seal(NUMBER, "tw_b")}))
        counts = await reencrypt(client, vault(k2, k1), f"{prefix}:outreach", outbox)
        assert counts == {"numbers": 1, "unreadable": 0, "outbox": 1}
        assert await NumberStore(client, vault(k2), f"{prefix}:outreach").number("tw_a") == NUMBER  # k1 dropped
        item = json.loads(await client.lindex(outbox, 0))
        assert vault(k2).open(item["to"], "tw_b") == NUMBER
    finally:
        await client.delete(f"{prefix}:outreach:numbers", outbox)


def test_production_refuses_outbound_without_number_keys(monkeypatch):
    assert secret_problems({}, ["NUMBER_KEYS"]) == [
        "NUMBER_KEYS is not set (outbound messages keep numbers encrypted: docs/outreach.md)"]
    assert "base64" in secret_problems({"NUMBER_KEYS": "k1:???"}, ["NUMBER_KEYS"])[0]
    assert secret_problems({"NUMBER_KEYS": new_key_spec("k1")}, ["NUMBER_KEYS"]) == []
    secrets = dict(sender_id_secret="s" * 24, production=True)
    monkeypatch.delenv("NUMBER_KEYS", raising=False)
    with pytest.raises(InvalidConfigException, match="NUMBER_KEYS"):
        AtSmsSettings(callback_secret="c" * 24, allowed_sources=("10.0.0.0/8",), username="u", api_key="k", **secrets)
    voice = dict(auth_token="t" * 24, **secrets)
    monkeypatch.setenv("OUTREACH_ENABLED", "false")
    VoiceSettings(**voice)  # no outbound: no key needed
    monkeypatch.setenv("OUTREACH_ENABLED", "true")
    with pytest.raises(InvalidConfigException, match="NUMBER_KEYS"):
        VoiceSettings(**voice)
    monkeypatch.setenv("NUMBER_KEYS", new_key_spec("k1"))
    VoiceSettings(**voice)

"""Phone numbers at rest: AES-GCM with named keys, so keys can be rotated.

Outbound messages and calls need a real number; everything else works on the keyed hash
(``core.identity``). Wherever a number must be kept (the SMS outbox, the outreach number
store, guardian links, queued jobs) it is kept as ``<key id>:<base64(nonce | ciphertext)>``:

* ``NUMBER_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"`` -- the first key encrypts,
  any listed key decrypts (rotation: put the new key first, run
  ``python -m infra.number_store reencrypt``, then drop the old key; docs/outreach.md);
* the associated data is ``context`` (the record's conversation id), so a sealed number
  copied onto another learner's record does not open;
* without ``NUMBER_KEYS`` (``make run`` and tests only) a ``dev`` key is derived from the
  given fallback secret; production refuses to start without ``NUMBER_KEYS`` when outbound
  is on (``infra.settings.secret_problems``).

AES-GCM from ``cryptography`` (``AESGCM``): a 96-bit random nonce per number.
"""
from __future__ import annotations

import base64
import binascii
import os
from typing import Dict, Optional, Text, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
DEV_KEY_ID = "dev"


class VaultConfigError(ValueError):
    """``NUMBER_KEYS`` cannot be read (one line naming what is wrong)."""


def parse_keys(spec: Text) -> Tuple[Tuple[Text, bytes], ...]:
    """``"k2:<b64>,k1:<b64>"`` -> ``(("k2", key), ("k1", key))``; raises ``VaultConfigError``."""
    keys = []
    for part in (p.strip() for p in (spec or "").split(",")):
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id.isalnum():
            raise VaultConfigError("NUMBER_KEYS must be 'id:base64key' pairs separated by commas (id: letters/digits)")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VaultConfigError(f"NUMBER_KEYS key {key_id!r} is not base64") from exc
        if len(key) != 32:
            raise VaultConfigError(f"NUMBER_KEYS key {key_id!r} must be 32 bytes (openssl rand -base64 32)")
        keys.append((key_id, key))
    if len({k for k, _ in keys}) != len(keys):
        raise VaultConfigError("NUMBER_KEYS names a key id twice")
    return tuple(keys)


def new_key_spec(key_id: Text) -> Text:
    """A fresh ``id:base64key`` entry for ``NUMBER_KEYS``."""
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode('ascii')}"


class NumberVault:
    """Seals and opens phone numbers; the first key seals, every key opens."""

    def __init__(self, keys: Tuple[Tuple[Text, bytes], ...]) -> None:
        if not keys:
            raise VaultConfigError("no number key")
        self.current = keys[0][0]
        self._ciphers: Dict[Text, AESGCM] = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def from_env(cls, fallback_secret: Optional[Text] = None, environ: Optional[Dict[Text, Text]] = None) -> "NumberVault":
        """``NUMBER_KEYS``; else a ``dev`` key derived from ``fallback_secret`` (local use only)."""
        spec = ((environ if environ is not None else os.environ).get("NUMBER_KEYS") or "").strip()
        if spec:
            return cls(parse_keys(spec))
        if not fallback_secret:
            raise VaultConfigError("NUMBER_KEYS is not set")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bakame-number-vault-dev").derive(
            fallback_secret.encode("utf-8"))
        return cls(((DEV_KEY_ID, derived),))

    def seal(self, number: Text, context: Text = "") -> Text:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, number.encode("utf-8"), context.encode("utf-8"))
        return f"{self.current}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: Optional[Text], context: Text = "") -> Optional[Text]:
        """The number, or None when ``sealed`` is damaged, of another context or of an unknown key."""
        key_id, sep, encoded = (sealed or "").partition(":")
        cipher = self._ciphers.get(key_id)
        if not sep or cipher is None:
            return None
        try:
            raw = base64.b64decode(encoded, validate=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            return None

    def is_current(self, sealed: Optional[Text]) -> bool:
        return (sealed or "").split(":", 1)[0] == self.current

    def reseal(self, sealed: Text, context: Text = "") -> Optional[Text]:
        """``sealed`` under the current key (unchanged when it already is); None if it does not open."""
        if self.is_current(sealed):
            return sealed
        number = self.open(sealed, context)
        return None if number is None else self.seal(number, context)

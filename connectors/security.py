"""Request authentication and pseudonymous conversation ids for the Twilio channels.

* ``TwilioRequestAuthenticator`` checks ``X-Twilio-Signature`` exactly as Twilio signs
  it: HMAC-SHA1 (auth token) of the full public URL Twilio requested plus the sorted POST
  parameters (``twilio.request_validator.RequestValidator``). Behind a reverse proxy the
  URL Rasa sees (``http://rasa:5005/...``) is not the one Twilio signed
  (``https://bakame.example.org/...``), so the public URL is rebuilt from
  ``PUBLIC_BASE_URL`` or, when ``TWILIO_TRUST_PROXY=true``, from ``X-Forwarded-*`` /
  ``Forwarded`` headers.
* ``SenderIdHasher`` (``core/identity.py``, re-exported here) turns a phone number into the
  conversation id ``tw_<hex HMAC-SHA256(secret, e164)>``.
"""
from __future__ import annotations

import logging
from typing import Any, Optional, Text
from urllib.parse import parse_qs, urlparse

from sanic.request import RequestParameters
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

from core.identity import ANONYMOUS_NUMBERS, SenderIdHasher, normalise_number, short_ref  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"

# Documented development default, used only when signature validation is explicitly off.
DEV_SENDER_ID_SECRET = "bakame-local-development-only"

def require_production_secrets(auth_token: Optional[Text], sender_id_secret: Optional[Text],
                               validate_signature: bool) -> None:
    """Refuse a production channel (``production: true`` in ``credentials.prod.yml``) that would
    accept forged requests or name conversations with a guessable key: raises with one line."""
    from rasa.shared.exceptions import InvalidConfigException

    from infra.settings import refusal, secret_problems

    env = {"TWILIO_AUTH_TOKEN": auth_token or "", "SENDER_ID_SECRET": sender_id_secret or "",
           "TWILIO_VALIDATE_SIGNATURE": "true" if validate_signature else "false"}
    problems = secret_problems(env, ["TWILIO_AUTH_TOKEN", "SENDER_ID_SECRET"])
    if problems:
        raise InvalidConfigException(refusal(problems))


def require_aggregator_secrets(callback_secret: Optional[Text], sender_id_secret: Optional[Text],
                               allowed_sources: Any) -> None:
    """Refuse a production aggregator channel that would accept callbacks from anyone or name
    conversations with a guessable key (its callbacks are not signed): raises with one line."""
    from rasa.shared.exceptions import InvalidConfigException

    from infra.settings import refusal, secret_problems

    env = {"AT_CALLBACK_SECRET": callback_secret or "", "SENDER_ID_SECRET": sender_id_secret or ""}
    problems = secret_problems(env, ["AT_CALLBACK_SECRET", "SENDER_ID_SECRET"])
    if not allowed_sources:
        problems.append("AT_ALLOWED_SOURCES (the aggregator's addresses) is not set")
    if problems:
        raise InvalidConfigException(refusal(problems))


def require_number_keys() -> None:
    """Refuse a production channel that sends outbound messages without ``NUMBER_KEYS``."""
    import os

    from rasa.shared.exceptions import InvalidConfigException

    from infra.settings import number_key_problems, refusal

    problems = number_key_problems(os.environ.get("NUMBER_KEYS"))
    if problems:
        raise InvalidConfigException(refusal(problems))


def twilio_params(request: Any) -> RequestParameters:
    """The POST parameters *including blank ones*.

    Twilio signs every parameter it sends, empty ones too (``FromZip=``, ``Body=`` of a
    media-only SMS), but Sanic's ``request.form`` drops blank values, so validating against
    it would reject genuine requests. Parsed once per request.
    """
    cached = getattr(getattr(request, "ctx", None), "twilio_params", None)
    if cached is not None:
        return cached
    params = RequestParameters()
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == "application/x-www-form-urlencoded" and request.body:
        params = RequestParameters(parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        request.ctx.twilio_params = params
    except AttributeError:  # pragma: no cover - plain objects in unit tests
        pass
    return params


def _first(value: Optional[Text]) -> Optional[Text]:
    """First element of a comma separated proxy header (the client-facing hop)."""
    if not value:
        return None
    first = value.split(",")[0].strip()
    return first or None


def _parse_forwarded(value: Optional[Text]) -> dict:
    """``Forwarded: for=1.2.3.4;proto=https;host=example.org`` (RFC 7239), first hop."""
    result = {}
    if not value:
        return result
    for part in value.split(",")[0].split(";"):
        if "=" in part:
            key, _, val = part.partition("=")
            result[key.strip().lower()] = val.strip().strip('"')
    return result


class TwilioRequestAuthenticator:
    """Validates ``X-Twilio-Signature`` of incoming webhook requests."""

    def __init__(
        self,
        auth_token: Optional[Text],
        validate: bool = True,
        public_base_url: Optional[Text] = None,
        trust_proxy: bool = False,
    ) -> None:
        self.auth_token = auth_token or None
        self.validate = validate
        self.public_base_url = (public_base_url or "").strip().rstrip("/") or None
        self.trust_proxy = trust_proxy
        self._validator = RequestValidator(self.auth_token) if self.auth_token else None
        if self.validate and not self.auth_token:
            logger.error(
                "Twilio signature validation is on but TWILIO_AUTH_TOKEN is not set: "
                "every Twilio request will be rejected with 403. Set the token, or set "
                "TWILIO_VALIDATE_SIGNATURE=false for local development only."
            )
        if not self.validate:
            logger.warning(
                "Twilio signature validation is OFF (TWILIO_VALIDATE_SIGNATURE=false). "
                "Never run like this on a public URL."
            )

    @property
    def misconfigured(self) -> bool:
        return self.validate and self._validator is None

    def public_url(self, request: Any) -> Text:
        """The URL Twilio requested (and signed), including the query string."""
        path = request.path
        query = request.query_string
        suffix = path + (f"?{query}" if query else "")
        if self.public_base_url:
            return self.public_base_url + suffix
        scheme, host = request.scheme, request.host
        if self.trust_proxy:
            headers = request.headers
            forwarded = _parse_forwarded(headers.get("forwarded"))
            scheme = _first(headers.get("x-forwarded-proto")) or forwarded.get("proto") or scheme
            fwd_host = _first(headers.get("x-forwarded-host")) or forwarded.get("host")
            if fwd_host:
                host = fwd_host
                port = _first(headers.get("x-forwarded-port"))
                default_port = "443" if scheme == "https" else "80"
                if port and ":" not in host and port != default_port:
                    host = f"{host}:{port}"
            prefix = (_first(headers.get("x-forwarded-prefix")) or "").rstrip("/")
            if prefix and not path.startswith(prefix + "/"):
                suffix = prefix + suffix
        return f"{scheme}://{host}{suffix}"

    def is_valid(self, request: Any) -> bool:
        """True if the request carries a valid Twilio signature (or validation is off)."""
        if not self.validate:
            return True
        if self._validator is None:
            return False
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return False
        try:
            return self._signed(self.public_url(request), twilio_params(request), signature)
        except Exception:  # malformed body or header: never a 500, just not valid
            logger.warning("Could not check a Twilio signature.", exc_info=True)
            return False

    def _signed(self, url: Text, params: Any, signature: Text) -> bool:
        """``RequestValidator.validate``, computing one HMAC where it computes two: the URL
        without its default port first (how Twilio signs a URL that has none), the other
        form only if that one does not match (issue 16: the signature check is a fixed
        cost of every Twilio turn). A ``bodySHA256`` URL (JSON bodies) goes to the library."""
        parsed = urlparse(url)
        if "bodySHA256" in parse_qs(parsed.query):
            return bool(self._validator.validate(url, params, signature))
        return any(compare(self._validator.compute_signature(form(parsed), params), signature)
                   for form in (remove_port, add_port))

"""The phone channels' settings: one frozen dataclass per channel, read once at start-up.

``from_credentials`` reads the channel's section of credentials.yml (a key there wins), else
the environment variable named next to it, else the default (``connectors.common.setting``).
Constructing a settings object checks it: a bad value raises ``InvalidConfigException``
before Rasa starts serving. ``PhoneSettings`` holds what every phone channel shares,
``TwilioSettings`` what the Twilio channels add (signatures), ``AggregatorSettings`` what the
aggregator's (Africa's Talking) channels add (source addresses, callback secret);
``SmsOptions`` is what both SMS channels add.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, FrozenSet, Mapping, Optional, Text, Tuple, Type, TypeVar

from rasa.shared.exceptions import InvalidConfigException

from connectors.common import as_bool, as_float, as_int, as_list, setting
from connectors.security import require_aggregator_secrets, require_number_keys, require_production_secrets
from core import language as languages
from infra.outreach_settings import outreach_enabled
from infra.rate_limit import Limits

S = TypeVar("S", bound="PhoneSettings")

RW_MODES = ("gather", "record", "auto")
DEFAULT_MORE_KEYWORDS = frozenset({"more", "komeza", "ibindi"})
DEFAULT_FETCH_KEYWORDS = frozenset({"ok", "okay", "sawa"})


def as_int_strict(text: Text) -> int:
    """A whole number as Twilio reads one; 0 for anything else."""
    try:
        return int(text)
    except ValueError:
        return 0


def _normalise(settings: Any, **values: Any) -> None:
    # a frozen dataclass can only normalise its own fields through object.__setattr__
    for name, value in values.items():
        object.__setattr__(settings, name, value)


@dataclass(frozen=True)
class PhoneSettings:
    """What every phone channel (Twilio, the aggregator's SMS and USSD) is configured with."""

    sender_id_secret: Optional[Text] = None
    turn_budget: float = 10.0  # seconds before a holding answer
    keypad: Optional[Mapping[Text, Text]] = None  # None: connectors.keypad.DEFAULT_KEYPAD
    default_language: Optional[Text] = None  # None: core.language.DEFAULT
    prompts: Optional[Mapping[Text, Any]] = None  # overrides of connectors.prompts
    redis_url: Optional[Text] = None
    timing_instrumentation: bool = True
    production: bool = False  # credentials.prod.yml: never unauthenticated, never the development key
    rate_limits: Optional[Limits] = None  # turns per learner (infra.rate_limit); None: no limit

    turn_budget_env: ClassVar[Text] = ""  # environment variable of ``turn_budget``

    def __post_init__(self) -> None:
        _normalise(self, turn_budget=max(1.0, float(self.turn_budget)))
        if self.production:
            self._require_production()

    def _require_production(self) -> None:
        """Raise ``InvalidConfigException`` (one line) when a production start would be unsafe."""

    @property
    def dev_secret_allowed(self) -> bool:
        """True when the development sender-id key may stand in for ``SENDER_ID_SECRET`` (local use)."""
        return False

    @classmethod
    def from_credentials(cls: Type[S], credentials: Optional[Mapping[Text, Any]]) -> S:
        """The settings from a credentials.yml section (keys as documented in connectors/README.md)."""
        return cls(**cls._read(credentials or {}))

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            sender_id_secret=setting(c, "sender_id_secret", "SENDER_ID_SECRET"),
            turn_budget=as_float(setting(c, "turn_budget", cls.turn_budget_env), 10.0),
            keypad=c.get("keypad"),
            default_language=setting(c, "default_language"),
            prompts=c.get("prompts"),
            redis_url=setting(c, "redis_url", "REDIS_URL"),
            timing_instrumentation=as_bool(
                setting(c, "timing_instrumentation", "TWILIO_TIMING_INSTRUMENTATION"), True
            ),
            production=as_bool(c.get("production"), False),
            rate_limits=Limits.for_learners(c),
        )


@dataclass(frozen=True)
class TwilioSettings(PhoneSettings):
    """What every Twilio channel is configured with."""

    auth_token: Optional[Text] = None
    validate_signature: bool = True
    public_base_url: Optional[Text] = None
    trust_proxy: bool = False

    def _require_production(self) -> None:
        require_production_secrets(self.auth_token, self.sender_id_secret, self.validate_signature)
        if outreach_enabled():
            require_number_keys()

    @property
    def dev_secret_allowed(self) -> bool:
        return not self.validate_signature

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            super()._read(c),
            auth_token=setting(c, "auth_token", "TWILIO_AUTH_TOKEN"),
            validate_signature=as_bool(setting(c, "validate_signature", "TWILIO_VALIDATE_SIGNATURE"), True),
            public_base_url=setting(c, "public_base_url", "PUBLIC_BASE_URL"),
            trust_proxy=as_bool(setting(c, "trust_proxy", "TWILIO_TRUST_PROXY"), False),
        )


@dataclass(frozen=True)
class VoiceSettings(TwilioSettings):
    """``connectors.twilio_voice``: voices, speech recognition, silences, recordings."""

    asr_min_confidence: float = 0.4  # below it the learner is asked to repeat
    rw_mode: Text = "auto"  # Kinyarwanda: gather | record | auto (record when STT is set)
    voice_en: Text = "Polly.Amy"
    voice_rw: Text = "Polly.Amy"
    say_language_en: Optional[Text] = None
    say_language_rw: Optional[Text] = None
    gather_language_en: Text = "en-US"
    gather_language_rw: Text = "rw-RW"
    speech_timeout: Text = "auto"
    speech_model: Optional[Text] = None
    enhanced: bool = False
    speech_hints: Optional[Text] = None
    gather_timeout: int = 6
    math_gather_timeout: int = 8
    max_silences: int = 2
    max_low_confidence: int = 2
    max_holds: int = 4
    record_max_length: int = 15
    record_silence_timeout: int = 2
    record_dtmf_window: int = 2
    play_beep: bool = True
    call_end_intent: Optional[Text] = None  # also send /<intent> when a call ends
    stt_base_url: Optional[Text] = None  # transcription endpoint (else STT_BASE_URL / LLM_BASE_URL)
    stt_model: Optional[Text] = None

    turn_budget_env: ClassVar[Text] = "VOICE_TURN_BUDGET"

    def __post_init__(self) -> None:
        super().__post_init__()
        _normalise(
            self,
            asr_min_confidence=float(self.asr_min_confidence),
            rw_mode=(self.rw_mode or "auto").lower(),
            speech_timeout=str(self.speech_timeout),
            speech_model=self.speech_model or None,
            enhanced=bool(self.enhanced),
            speech_hints=self.speech_hints or None,
            max_holds=max(1, int(self.max_holds)),
            call_end_intent=(self.call_end_intent or "").strip().lstrip("/") or None,
        )
        self._check()

    def _check(self) -> None:
        if self.rw_mode not in RW_MODES:
            raise InvalidConfigException(f"rw_mode (VOICE_RW_MODE) must be one of {RW_MODES}, not {self.rw_mode!r}.")
        timeout = self.speech_timeout.lower()
        if timeout != "auto" and as_int_strict(timeout) < 1:
            raise InvalidConfigException(
                f"speech_timeout must be 'auto' or a positive whole number of seconds, not {self.speech_timeout!r}."
            )
        if self.speech_model and timeout == "auto" and self.speech_model != "numbers_and_commands":
            raise InvalidConfigException(
                "Twilio only accepts speech_timeout 'auto' without a speech_model (or with "
                "'numbers_and_commands'); set speech_timeout to a number of seconds."
            )
        if self.enhanced and self.speech_model != "phone_call":
            raise InvalidConfigException("enhanced speech recognition needs speech_model 'phone_call'.")
        for lang in ("en", "rw"):
            voice = getattr(self, f"voice_{lang}")
            if not voice or not isinstance(voice, str):
                raise InvalidConfigException(f"voice_{lang} must name a Twilio <Say> voice.")
        if not 0.0 <= self.asr_min_confidence <= 1.0:
            raise InvalidConfigException("asr_min_confidence must be between 0 and 1.")

    def per_language(self, name: Text, lang: Optional[Text]) -> Any:
        """``<name>_en`` or ``<name>_rw`` for the learner's language (the default when unknown)."""
        return getattr(self, f"{name}_{languages.or_default(lang)}")

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            super()._read(c),
            asr_min_confidence=as_float(setting(c, "asr_min_confidence", "VOICE_ASR_MIN_CONFIDENCE"), 0.4),
            rw_mode=str(setting(c, "rw_mode", "VOICE_RW_MODE", "auto")),
            voice_en=setting(c, "voice_en", default="Polly.Amy"),
            voice_rw=setting(c, "voice_rw", default="Polly.Amy"),
            say_language_en=setting(c, "say_language_en"),
            say_language_rw=setting(c, "say_language_rw"),
            gather_language_en=setting(c, "gather_language_en", default="en-US"),
            gather_language_rw=setting(c, "gather_language_rw", default="rw-RW"),
            speech_timeout=str(setting(c, "speech_timeout", default="auto")),
            speech_model=setting(c, "speech_model"),
            enhanced=as_bool(setting(c, "enhanced"), False),
            speech_hints=setting(c, "speech_hints"),
            gather_timeout=as_int(setting(c, "gather_timeout"), 6),
            math_gather_timeout=as_int(setting(c, "math_gather_timeout"), 8),
            max_silences=as_int(setting(c, "max_silences", "VOICE_MAX_SILENCES"), 2),
            max_low_confidence=as_int(setting(c, "max_low_confidence"), 2),
            max_holds=as_int(setting(c, "max_holds"), 4),
            record_max_length=as_int(setting(c, "record_max_length"), 15),
            record_silence_timeout=as_int(setting(c, "record_silence_timeout"), 2),
            record_dtmf_window=as_int(setting(c, "record_dtmf_window"), 2),
            play_beep=as_bool(setting(c, "play_beep"), True),
            call_end_intent=setting(c, "call_end_intent", "VOICE_CALL_END_INTENT"),
            stt_base_url=setting(c, "stt_base_url"),
            stt_model=setting(c, "stt_model"),
        )


@dataclass(frozen=True)
class SmsOptions(PhoneSettings):
    """What every SMS channel adds: segments, MORE keywords, de-duplication."""

    max_segments: int = 2  # per reply; the rest waits for MORE
    max_body_chars: int = 640  # longer incoming messages are refused
    more_keywords: FrozenSet[Text] = DEFAULT_MORE_KEYWORDS
    keypad_enabled: bool = True
    dedupe_ttl: float = 24 * 3600.0  # seconds a MessageSid is remembered
    optout: bool = False  # STOP/HAGARIKA/... opt the learner out at once (connectors.optout)

    optout_default: ClassVar[bool] = False

    turn_budget_env: ClassVar[Text] = "SMS_TURN_BUDGET"

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.max_segments) < 1:
            raise InvalidConfigException("max_segments (SMS_MAX_SEGMENTS) must be at least 1.")
        keywords = frozenset(k.lower() for k in (self.more_keywords or DEFAULT_MORE_KEYWORDS))
        _normalise(self, max_segments=int(self.max_segments), max_body_chars=int(self.max_body_chars),
                   more_keywords=keywords, dedupe_ttl=float(self.dedupe_ttl))

    @property
    def fetch_keywords(self) -> FrozenSet[Text]:
        """Words that fetch an answer still owed to the learner (MORE words too)."""
        return self.more_keywords | DEFAULT_FETCH_KEYWORDS

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            super()._read(c),
            max_segments=as_int(setting(c, "max_segments", "SMS_MAX_SEGMENTS"), 2),
            max_body_chars=as_int(setting(c, "max_body_chars", "SMS_MAX_BODY_CHARS"), 640),
            more_keywords=frozenset(as_list(setting(c, "more_keywords"))) or DEFAULT_MORE_KEYWORDS,
            keypad_enabled=as_bool(setting(c, "keypad_enabled"), True),
            dedupe_ttl=as_float(setting(c, "dedupe_ttl"), 24 * 3600.0),
            # outbound messages (infra/outreach.py) come from Twilio's number: STOP must work there
            optout=as_bool(setting(c, "optout", "SMS_OPTOUT"), cls.optout_default or outreach_enabled()),
        )


@dataclass(frozen=True)
class SmsSettings(SmsOptions, TwilioSettings):
    """``connectors.twilio_sms``: the Twilio settings and the SMS options."""


@dataclass(frozen=True)
class AggregatorSettings(PhoneSettings):
    """A local aggregator's callbacks (Africa's Talking protocol): they are not signed, so a
    request is accepted only from ``allowed_sources`` and with ``callback_secret`` in its path
    (``connectors.callback_guard``). Without a secret (``make run``) only loopback is accepted."""

    callback_secret: Optional[Text] = None
    allowed_sources: Tuple[Text, ...] = ()  # CIDRs the aggregator calls from
    trust_proxy: bool = False  # take the client address from X-Forwarded-For (behind a proxy only)

    def __post_init__(self) -> None:
        _normalise(self, callback_secret=(self.callback_secret or "").strip() or None,
                   allowed_sources=tuple(self.allowed_sources or ()))
        super().__post_init__()

    def _require_production(self) -> None:
        require_aggregator_secrets(self.callback_secret, self.sender_id_secret, self.allowed_sources)

    @property
    def dev_secret_allowed(self) -> bool:
        return not self.callback_secret  # loopback only: a local trial

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            super()._read(c),
            callback_secret=setting(c, "callback_secret", "AT_CALLBACK_SECRET"),
            allowed_sources=tuple(as_list(setting(c, "allowed_sources", "AT_ALLOWED_SOURCES"))),
            trust_proxy=as_bool(setting(c, "trust_proxy", "AT_TRUST_PROXY"), False),
        )


@dataclass(frozen=True)
class UssdSettings(AggregatorSettings):
    """``connectors.ussd``: screen size and the session's time budget."""

    screen_chars: int = 182  # what the operator shows on one screen
    session_budget: float = 120.0  # seconds after the first screen when the session ends politely
    turn_budget: float = 8.0  # seconds one screen may wait for the assistant

    turn_budget_env: ClassVar[Text] = "USSD_TURN_BUDGET"

    def __post_init__(self) -> None:
        super().__post_init__()
        _normalise(self, screen_chars=int(self.screen_chars), session_budget=float(self.session_budget))
        if self.screen_chars < 60:
            raise InvalidConfigException("screen_chars (USSD_SCREEN_CHARS) must be at least 60.")

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        values = dict(
            super()._read(c),
            screen_chars=as_int(setting(c, "screen_chars", "USSD_SCREEN_CHARS"), 182),
            session_budget=as_float(setting(c, "session_budget", "USSD_SESSION_BUDGET"), 120.0),
        )
        values["turn_budget"] = as_float(setting(c, "turn_budget", cls.turn_budget_env), 8.0)
        return values


@dataclass(frozen=True)
class AtSmsSettings(SmsOptions, AggregatorSettings):
    """``connectors.at_sms``: the aggregator's SMS, replies sent through its SDK."""

    username: Optional[Text] = None  # Africa's Talking application user name ("sandbox" for its sandbox)
    api_key: Optional[Text] = None
    sender: Optional[Text] = None  # short code, long number or registered sender id replies come from
    api_base_url: Optional[Text] = None  # another API base (a local fake in tests); None: the SDK's
    optout: bool = True

    optout_default: ClassVar[bool] = True

    def _require_production(self) -> None:
        super()._require_production()
        require_number_keys()
        if not self.username or not self.api_key:
            raise InvalidConfigException(
                "Refusing to start in production: AT_USERNAME and AT_API_KEY are needed to send SMS replies."
            )

    @classmethod
    def _read(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            super()._read(c),
            username=setting(c, "username", "AT_USERNAME"),
            api_key=setting(c, "api_key", "AT_API_KEY"),
            sender=setting(c, "sender", "AT_SMS_SENDER"),
            api_base_url=setting(c, "api_base_url", "AT_API_BASE_URL"),
        )

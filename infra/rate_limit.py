"""Rate limits: per learner on every channel, per client address on Rasa's HTTP API.

**Per learner** (:class:`LearnerRateLimit`, wrapped around a channel's ``on_new_message``):
a learner -- or an SMS bot answering our replies in a loop -- gets at most
``RATE_LIMIT_PER_MINUTE`` (20) turns in any 60 s and ``RATE_LIMIT_PER_HOUR`` (300) in any
hour, counted in Redis for all Rasa processes together. A message over the limit never
reaches Rasa (no NLU, no actions, no reply): the first one gets ``rate_limited``
(actions/content/messages.yml) in the learner's language, later ones nothing until that
window's length has passed (SMS: empty TwiML, so no outbound SMS; a call ends with a
goodbye; REST: ``[]``). Every limited message is published to the event broker as a
``rate_limited`` event (``sender_id``, ``timestamp``, ``text``, ``input_channel``,
``metadata``, ``window``): in production it lands in PostgreSQL's ``events`` table next to
the learner's other events, so it is exported and erased with them (``sender_id``).

**Per client address** (:class:`ClientRateLimit`, a Sanic request middleware): Rasa's HTTP
API -- ``/webhooks/rest/...``, ``/conversations/...``, ``/model/...`` -- answers 429 after
``API_RATE_LIMIT_PER_MINUTE`` (120) / ``API_RATE_LIMIT_PER_HOUR`` (3000) requests from one
address. Not counted: Twilio's webhooks (Twilio calls from many shared addresses; they are
signed and limited per learner) and the health checks. ``API_TRUSTED_PROXIES`` (0): how
many reverse proxies in front of Rasa append to ``X-Forwarded-For``; 0 ignores the header
(any client could write it).

Windows slide (a sorted set of accepted messages per key, one Lua script: atomic across
processes, on Redis' clock). 0 switches a limit off. Keys are
``<REDIS_KEY_PREFIX>:ratelimit:<learner|client>:<sha256 of the id>`` (never a number or an
address), expiring with the longest window. Fail open: with Redis unreachable a message is
allowed (logged once per outage); without ``REDIS_URL`` (``make run``) each process counts
on its own.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Deque, Dict, Mapping, Optional, Sequence, Text, Tuple

from rasa.core.channels.channel import UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from core import language as languages
from core import texts
from infra.errors import learner_language
from infra.redis_client import ResilientRedis

logger = logging.getLogger(__name__)

MINUTE, HOUR = 60.0, 3600.0
WINDOW_SECONDS = {"minute": MINUTE, "hour": HOUR}
NOTICE_KEY = "rate_limited"  # actions/content/messages.yml, through core.texts
LIMITED_EVENT = "rate_limited"

# KEYS: accepted (sorted set, score = time), notice flag. ARGV: member, per_minute, per_hour[, now].
# -> {1 if this refusal is the first of its window else 0, window ('' = accepted), retry after (s)}
SLIDING_WINDOW = """
local now = tonumber(ARGV[4])
if not now then local t = redis.call('TIME') now = tonumber(t[1]) + tonumber(t[2]) / 1000000 end
local per_minute, per_hour = tonumber(ARGV[2]), tonumber(ARGV[3])
local horizon = 60
if per_hour > 0 then horizon = 3600 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - horizon)
local window, wait = '', 0
if per_hour > 0 then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= per_hour then
    local oldest = redis.call('ZRANGE', KEYS[1], n - per_hour, n - per_hour, 'WITHSCORES')
    window, wait = 'hour', tonumber(oldest[2]) + 3600 - now
  end
end
if window == '' and per_minute > 0 then
  local since = '(' .. string.format('%.6f', now - 60)
  local n = redis.call('ZCOUNT', KEYS[1], since, '+inf')
  if n >= per_minute then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', n - per_minute, 1)
    window, wait = 'minute', tonumber(oldest[2]) + 60 - now
  end
end
if window == '' then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('EXPIRE', KEYS[1], horizon)
  return {0, '', '0'}
end
local length = 60
if window == 'hour' then length = 3600 end
local first = 0
if tonumber(redis.call('GET', KEYS[2]) or '0') <= now then  -- no refusal answered in the last window length
  redis.call('SET', KEYS[2], string.format('%.6f', now + length), 'EX', length)
  first = 1
end
return {first, window, string.format('%.3f', wait)}
"""


# ---------------------------------------------------------------------- settings
def _count(credentials: Optional[Mapping[Text, Any]], key: Text, env: Text, default: int) -> int:
    """``credentials[key]``, else the environment variable, else ``default``; negative -> 0."""
    value = (credentials or {}).get(key)
    if value is None or str(value).strip() == "":
        value = os.environ.get(env, "")
    if str(value).strip() == "":
        return default
    try:
        return max(0, int(float(value)))
    except (ValueError, OverflowError):
        logger.warning("ignoring %s=%r (not a number), using %d", env, value, default)
        return default


@dataclass(frozen=True)
class Limits:
    per_minute: int = 0
    per_hour: int = 0

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0 or self.per_hour > 0

    @property
    def horizon(self) -> float:
        return HOUR if self.per_hour > 0 else MINUTE

    @classmethod
    def from_settings(cls, credentials: Optional[Mapping[Text, Any]], prefix: Text, minute: int, hour: int) -> "Limits":
        """``<prefix>_PER_MINUTE`` / ``<prefix>_PER_HOUR`` (credentials: the same, lower case)."""
        return cls(
            per_minute=_count(credentials, f"{prefix.lower()}_per_minute", f"{prefix}_PER_MINUTE", minute),
            per_hour=_count(credentials, f"{prefix.lower()}_per_hour", f"{prefix}_PER_HOUR", hour),
        )

    @classmethod
    def for_learners(cls, credentials: Optional[Mapping[Text, Any]] = None) -> "Limits":
        return cls.from_settings(credentials, "RATE_LIMIT", minute=20, hour=300)

    @classmethod
    def for_clients(cls, credentials: Optional[Mapping[Text, Any]] = None) -> "Limits":
        return cls.from_settings(credentials, "API_RATE_LIMIT", minute=120, hour=3000)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    first: bool = False  # the first refusal in this window: the one that is answered
    window: Text = ""  # the limit that refused: "minute" or "hour"
    retry_after: float = 0.0  # seconds until a message would be accepted again


ALLOWED = Verdict(True)


# ---------------------------------------------------------------------- counting
class MemoryWindows:
    """One process's sliding windows (``make run``); bounded, the least recently used go first."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self.max_keys = max_keys
        self._accepted: "OrderedDict[Text, Deque[float]]" = OrderedDict()
        self._notice_until: Dict[Text, float] = {}

    async def hit(self, key: Text, limits: Limits, now: Optional[float] = None) -> Verdict:
        now = time.time() if now is None else now
        accepted = self._accepted.pop(key, None) or deque()
        while accepted and accepted[0] <= now - limits.horizon:
            accepted.popleft()
        self._accepted[key] = accepted
        while len(self._accepted) > self.max_keys:
            old, _ = self._accepted.popitem(last=False)
            self._notice_until.pop(old, None)
        refusal = _refusal(accepted, limits, now)
        if refusal is None:
            accepted.append(now)
            return ALLOWED
        window, wait = refusal
        first = self._notice_until.get(key, 0.0) <= now
        if first:
            self._notice_until[key] = now + WINDOW_SECONDS[window]
        return Verdict(False, first, window, wait)


def _refusal(accepted: Sequence[float], limits: Limits, now: float) -> Optional[Tuple[Text, float]]:
    """What SLIDING_WINDOW decides, for :class:`MemoryWindows` (times in order, within the horizon)."""
    if limits.per_hour > 0 and len(accepted) >= limits.per_hour:
        return "hour", accepted[len(accepted) - limits.per_hour] + HOUR - now
    if limits.per_minute > 0:
        recent = [t for t in accepted if t > now - MINUTE]
        if len(recent) >= limits.per_minute:
            return "minute", recent[len(recent) - limits.per_minute] + MINUTE - now
    return None


class RedisWindows:
    """The same windows in Redis, shared by every Rasa process."""

    def __init__(self, redis: ResilientRedis, prefix: Text) -> None:
        self.redis = redis
        self.prefix = prefix

    async def hit(self, key: Text, limits: Limits, now: Optional[float] = None) -> Verdict:
        keys = (self.prefix + key, self.prefix + key + ":notice")
        args = [uuid.uuid4().hex, limits.per_minute, limits.per_hour] + ([] if now is None else [repr(now)])
        first, window, wait = await self.redis.call(lambda r: r.eval(SLIDING_WINDOW, 2, *keys, *args))
        if not window:
            return ALLOWED
        return Verdict(False, bool(int(first)), str(window), float(wait))


_WINDOWS: Dict[Text, Any] = {}


def shared_windows(redis_url: Optional[Text] = None) -> Any:
    """This process's counter: Redis when ``redis_url`` (or ``REDIS_URL``) is set, else memory."""
    url = (redis_url if redis_url is not None else os.environ.get("REDIS_URL", "")).strip()
    windows = _WINDOWS.get(url)
    if windows is None:
        windows = MemoryWindows()
        if url:
            try:
                # one try, short timeouts: a limiter that waits for Redis would hold up every turn
                redis = ResilientRedis.from_url("rate limits (Redis)", url, retries=0, socket_timeout=0.5,
                                                socket_connect_timeout=0.5)
            except ValueError as exc:
                logger.error("rate limits are counted per process: %s", exc)
            else:
                prefix = (os.environ.get("REDIS_KEY_PREFIX") or "bakame").strip()
                windows = RedisWindows(redis, f"{prefix}:ratelimit:")
        _WINDOWS[url] = windows
    return windows


class RateLimiter:
    """``limits`` per identity in ``scope``; :meth:`check` never raises (fail open)."""

    def __init__(self, limits: Limits, windows: Any, scope: Text) -> None:
        self.limits = limits
        self.windows = windows
        self.scope = scope
        self._failing = False

    async def check(self, identity: Text, now: Optional[float] = None) -> Verdict:
        if not self.limits.enabled:
            return ALLOWED
        try:
            verdict = await self.windows.hit(f"{self.scope}:{digest(identity)}", self.limits, now)
        except Exception as exc:  # noqa: BLE001 - the conversation must not die of its limiter
            if not self._failing:
                logger.warning("%s rate limit not checked (%s): messages are let through", self.scope,
                               type(exc).__name__)
            self._failing = True
            return ALLOWED
        if self._failing:
            logger.warning("%s rate limits are checked again", self.scope)
            self._failing = False
        return verdict


def digest(identity: Optional[Text]) -> Text:
    """What names a learner or address in keys and logs (a REST sender id may be a phone number)."""
    return hashlib.sha256((identity or "").encode("utf-8")).hexdigest()[:32]


def registered_app(blueprint: Optional[Blueprint]) -> Any:
    """The Sanic app ``blueprint`` is registered on (None before)."""
    return next(iter(blueprint.apps)) if blueprint is not None and blueprint.registered else None


# ---------------------------------------------------------------------- per learner
class LearnerRateLimit:
    """The per-learner limit around a channel's ``on_new_message``."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    @classmethod
    def from_settings(
        cls, credentials: Optional[Mapping[Text, Any]] = None, redis_url: Optional[Text] = None
    ) -> "LearnerRateLimit":
        return cls.with_limits(Limits.for_learners(credentials), redis_url)

    @classmethod
    def with_limits(cls, limits: Limits, redis_url: Optional[Text] = None) -> "LearnerRateLimit":
        """``limits`` counted in this process's windows (Redis when ``redis_url``/``REDIS_URL`` is set)."""
        return cls(RateLimiter(limits, shared_windows(redis_url), "learner"))

    def guard(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        app_of: Callable[[], Any],
        end_call: bool = False,
    ) -> Callable[[UserMessage], Awaitable[Any]]:
        """``on_new_message`` that answers a learner over the limit without running Rasa.

        ``app_of()``: the Sanic app (its agent has the tracker store and the event broker).
        ``end_call``: the answer carries the ``end_call`` payload (calls hang up; SMS ignores it).
        """
        if not self.limiter.limits.enabled:
            return on_new_message

        async def guarded(message: UserMessage) -> Any:
            verdict = await self.limiter.check(message.sender_id or "")
            if verdict.allowed:
                return await on_new_message(message)
            agent = getattr(getattr(app_of(), "ctx", None), "agent", None)
            self._record(agent, message, verdict)
            text = await self._notice(agent, message) if verdict.first else None
            if end_call:
                custom = {"end_call": True, **({"text": text} if text else {})}
                await message.output_channel.send_response(message.sender_id, {"custom": custom})
            elif text:
                await message.output_channel.send_text_message(message.sender_id, text)
            return None

        return guarded

    @staticmethod
    async def _notice(agent: Any, message: UserMessage) -> Text:
        """``rate_limited`` in the learner's language: the tracker's, else detected from the message."""
        language = None
        store = getattr(agent, "tracker_store", None)
        if store is not None:
            try:
                tracker = await store.retrieve(message.sender_id)
                language = tracker.get_slot("language") if tracker is not None else None
            except Exception:  # noqa: BLE001 - the apology must not fail
                logger.warning("could not read the learner's language for the rate-limit notice")
        if not languages.is_supported(language):
            language = learner_language(message.sender_id, message.text)
        return texts.text(NOTICE_KEY, language)

    @staticmethod
    def _record(agent: Any, message: UserMessage, verdict: Verdict) -> None:
        """The message as a ``rate_limited`` event on the event broker (none: only this log line)."""
        ref = digest(message.sender_id)[:12]  # as in the Redis key
        log = logger.warning if verdict.first else logger.info
        log("rate limited: learner %s over its %s limit (%s), retry in %.0f s", ref, verdict.window,
            message.input_channel, verdict.retry_after)
        broker = getattr(getattr(agent, "tracker_store", None), "event_broker", None)
        if broker is None:
            return
        event = {
            "event": LIMITED_EVENT, "sender_id": message.sender_id, "timestamp": time.time(),
            "text": message.text, "input_channel": message.input_channel, "message_id": message.message_id,
            "metadata": message.metadata or {}, "window": verdict.window, "answered": verdict.first,
        }
        try:
            broker.publish(event)
        except Exception:  # noqa: BLE001 - recording must not fail the request
            logger.exception("could not publish the rate_limited event of %s", ref)


# ---------------------------------------------------------------------- per client address
class ClientRateLimit:
    """Per-address limit on Rasa's HTTP API: a request middleware answering 429."""

    EXEMPT_PREFIXES = ("/webhooks/twilio_",)  # signed by Twilio, limited per learner
    EXEMPT_PATHS = frozenset({"/", "/status", "/version"})  # health checks

    def __init__(self, limiter: RateLimiter, trusted_proxies: int = 0) -> None:
        self.limiter = limiter
        self.trusted_proxies = max(0, int(trusted_proxies))

    @classmethod
    def from_settings(
        cls, credentials: Optional[Mapping[Text, Any]] = None, redis_url: Optional[Text] = None
    ) -> "ClientRateLimit":
        limits = Limits.for_clients(credentials)
        proxies = _count(credentials, "api_trusted_proxies", "API_TRUSTED_PROXIES", 0)
        return cls(RateLimiter(limits, shared_windows(redis_url), "client"), proxies)

    def install(self, blueprint: Blueprint) -> None:
        """Registers the middleware on the app ``blueprint`` is served by, once per app."""
        if not self.limiter.limits.enabled:
            return

        async def on_start(app: Any, _loop: Any) -> None:
            self.register(app)

        blueprint.listener("before_server_start")(on_start)

    def register(self, app: Any) -> None:
        """The middleware on ``app`` (once, whichever channel asks first)."""
        if getattr(app.ctx, "client_rate_limit", None) is None:
            app.ctx.client_rate_limit = self
            app.register_middleware(self.middleware, "request")

    def client_address(self, request: Request) -> Text:
        """The peer address; behind ``trusted_proxies`` proxies, the one the outermost one saw."""
        if self.trusted_proxies:
            hops = [h.strip() for h in (request.headers.get("x-forwarded-for") or "").split(",") if h.strip()]
            if len(hops) >= self.trusted_proxies:
                return hops[-self.trusted_proxies]
        return request.ip or ""

    async def middleware(self, request: Request) -> Optional[HTTPResponse]:
        path = request.path
        if path in self.EXEMPT_PATHS or path.startswith(self.EXEMPT_PREFIXES):
            return None
        verdict = await self.limiter.check(self.client_address(request))
        if verdict.allowed:
            return None
        wait = max(1, math.ceil(verdict.retry_after))
        if verdict.first:
            logger.warning("HTTP API: a client is over its %s limit; 429 for %d s", verdict.window, wait)
        return response.json({"error": "Too many requests", "retry_after": wait}, status=429,
                             headers={"Retry-After": str(wait)})

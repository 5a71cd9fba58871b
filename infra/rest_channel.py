"""The production REST channel: Rasa's ``rest`` channel (same URL,
``POST /webhooks/rest/webhook``, same request and response), except that a turn the
stores could not run is answered politely instead of with an empty list.

``credentials.prod.yml`` registers it as ``infra.rest_channel.ResilientRestInput``.
When Redis (conversation state or locks) is unreachable, or the learner's lock could not
be taken, the learner gets ``[{"recipient_id": <sender>, "text": <try_again_later>}]``
with HTTP 200, in their language (the language detected from the message, with the last
language this process saw for them as the current one; English when nothing is known).

Anyone who can post to it can talk as any learner, so in production (``require_token: true``
in ``credentials.prod.yml``) the channel refuses to start without a token and answers 401 to a
request without it: ``?token=<token>`` (as Rasa's HTTP API) or ``Authorization: Bearer <token>``.
The token is ``token`` in the credentials, else ``REST_CHANNEL_TOKEN``, else ``RASA_AUTH_TOKEN``.

Rate limits (:mod:`infra.rate_limit`): a learner (``sender``) over ``RATE_LIMIT_PER_*`` gets
the ``rate_limited`` text once, then ``[]``, without a Rasa turn; and this channel installs
the per-address limit of Rasa's whole HTTP API (``API_RATE_LIMIT_PER_*``: 429).
"""
from __future__ import annotations

import hmac
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.lock_store import LockError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request

from core import config
from infra.errors import StoreUnavailable, polite_reply
from infra.rate_limit import ClientRateLimit, LearnerRateLimit, registered_app
from infra.settings import refusal, secret_problems

logger = logging.getLogger(__name__)

# What makes a turn impossible (as opposed to a bug, which Rasa's channel logs).
UNAVAILABLE = (StoreUnavailable, LockError, RedisConnectionError, RedisTimeoutError)


def guard(on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Callable[[UserMessage], Awaitable[Any]]:
    """``on_new_message`` that answers "please try again shortly" when the stores are down."""

    async def guarded(message: UserMessage) -> Any:
        try:
            return await on_new_message(message)
        except UNAVAILABLE as exc:
            logger.warning("turn not run (%s); the learner is asked to try again", exc)
            # Redis failed at the end of the turn (the tracker was not saved): drop what the
            # turn said, so the learner is not answered for a turn that did not count.
            collected = getattr(message.output_channel, "messages", None)
            if isinstance(collected, list):
                collected.clear()
            await message.output_channel.send_text_message(
                message.sender_id, polite_reply(message.sender_id, message.text)
            )
            return None

    return guarded


def presented_token(request: Request) -> Optional[Text]:
    """The token a request carries: ``?token=`` or an ``Authorization: Bearer`` header."""
    token = request.args.get("token")
    if token:
        return token
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class ResilientRestInput(RestInput):
    """Rasa's REST channel with :func:`guard` around the turn, behind a token when required, rate-limited."""

    def __init__(
        self,
        token: Optional[Text] = None,
        rate_limit: Optional[LearnerRateLimit] = None,
        client_limit: Optional[ClientRateLimit] = None,
    ) -> None:
        """``rate_limit`` per learner, ``client_limit`` per address (``from_credentials`` reads
        the settings); None: no limit."""
        self.token = token or None
        self.rate_limit = rate_limit
        self.client_limit = client_limit

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ResilientRestInput":
        c = credentials or {}
        token = str(c.get("token") or config.env("REST_CHANNEL_TOKEN", "RASA_AUTH_TOKEN", default=""))
        env = {"RASA_AUTH_TOKEN": token}
        if config.as_bool(c.get("require_token"), False):
            problems = secret_problems(env, ["RASA_AUTH_TOKEN"])
            if problems:  # refuses the start: an open REST channel lets anyone talk as any learner
                raise InvalidConfigException(refusal([f"the REST channel's token ({problems[0]})"]))
        return cls(token=env["RASA_AUTH_TOKEN"] or None, rate_limit=LearnerRateLimit.from_settings(c),
                   client_limit=ClientRateLimit.from_settings(c))

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        handler = guard(on_new_message)
        bp: Optional[Blueprint] = None
        if self.rate_limit is not None:  # ``bp`` is read when a message comes, after it is assigned
            handler = self.rate_limit.guard(handler, lambda: registered_app(bp))
        bp = super().blueprint(handler)
        if self.client_limit is not None:
            self.client_limit.install(bp)
        if self.token:
            expected = self.token.encode("utf-8")

            @bp.middleware("request")
            async def require_token(request: Request) -> Optional[Any]:
                if request.method == "GET":  # the health route: says nothing about learners
                    return None
                given = (presented_token(request) or "").encode("utf-8")
                if not hmac.compare_digest(given, expected):
                    logger.warning("Rejected a REST channel request without a valid token.")
                    return response.json({"error": "a valid token is required"}, status=401)
                return None

        return bp

"""The production REST channel: Rasa's ``rest`` channel (same URL,
``POST /webhooks/rest/webhook``, same request and response), except that a turn the
stores could not run is answered politely instead of with an empty list.

``credentials.prod.yml`` registers it as ``infra.rest_channel.ResilientRestInput``.
When Redis (conversation state or locks) is unreachable, or the learner's lock could not
be taken, the learner gets ``[{"recipient_id": <sender>, "text": <try_again_later>}]``
with HTTP 200, in their language (the language detected from the message, with the last
language this process saw for them as the current one; English when nothing is known).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.lock_store import LockError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import Blueprint

from infra.errors import StoreUnavailable, polite_reply

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


class ResilientRestInput(RestInput):
    """Rasa's REST channel with :func:`guard` around the turn."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        return super().blueprint(guard(on_new_message))

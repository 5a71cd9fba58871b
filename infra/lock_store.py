"""A Redis ticket lock that several Rasa processes can share, for production::

    lock_store:
      type: infra.lock_store.ResilientRedisLockStore
      url: ${REDIS_HOST}          # plus port, db, password, use_ssl, key_prefix

Why not Rasa's ``RedisLockStore``: it issues and returns tickets with GET, change in
Python, SET. Two processes taking a ticket for the same learner at the same moment both
read the same lock, both write ticket 0 and both run the turn at once, against the same
tracker. Here every ticket operation is one Lua script, atomic in Redis:

* ``<prefix>:lock:<sender>:seq``    INCR gives the next ticket number (arrival order);
* ``<prefix>:lock:<sender>:queue``  sorted set of waiting tickets (score = ticket number,
  member = ``"<number>:<expiry>"``, expiry on Redis' own clock, so hosts need not agree
  on the time).

A turn runs when its ticket is the lowest unexpired one; it then removes its ticket. Taking
the ticket also checks it (one script, one round trip: ``ISSUE_AND_CHECK``); only a turn
that has to wait polls ``CHECK``. So
messages of one learner are handled one at a time, in the order they arrived, whichever
process received them; other learners are not held up. A ticket expires after the lock
lifetime (Rasa's ``TICKET_LOCK_LIFETIME``, 60 s) should its process die mid-turn.

Redis unreachable when the turn starts: :class:`infra.errors.StoreUnavailable` after the
retries (the channel apologises). Unreachable when the turn ends: the release is retried
on the next lock call of this process (and the ticket expires anyway).
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, List, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from core.config import as_float
from infra.errors import StoreUnavailable
from infra.redis_client import ResilientRedis

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.05  # seconds between checks while another turn of the learner runs

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

# KEYS: seq, queue. ARGV: lifetime. -> ticket number
ISSUE = _NOW + """
local n = redis.call('INCR', KEYS[1])
local lifetime = tonumber(ARGV[1])
redis.call('ZADD', KEYS[2], n, n .. ':' .. (now + lifetime))
local ttl = math.ceil(lifetime * 2) + 60
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return n
"""

# The state of ticket `mine` in the queue `queue` (expired tickets removed): 1 my turn,
# 0 wait, -1 my ticket expired/unknown.
_STATE = """
local head = nil
local found = false
for _, m in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  local sep = string.find(m, ':', 1, true)
  local num = tonumber(string.sub(m, 1, sep - 1))
  local exp = tonumber(string.sub(m, sep + 1))
  if exp < now then
    redis.call('ZREM', queue, m)
  else
    if head == nil then head = num end
    if num == mine then found = true end
  end
end
local state = 0
if not found then state = -1 elseif head == mine then state = 1 end
"""

# KEYS: queue. ARGV: ticket. -> 1 my turn, 0 wait, -1 my ticket expired/unknown
CHECK = _NOW + "local queue = KEYS[1] local mine = tonumber(ARGV[1])" + _STATE + "return state"

# ISSUE, then CHECK of that ticket, in one round trip (issue 16: a learner's turn usually
# finds no other turn of theirs running). KEYS: seq, queue. ARGV: lifetime. -> {ticket, state}
ISSUE_AND_CHECK = ISSUE.replace("return n", "local queue = KEYS[2] local mine = n") + _STATE + "return {n, state}"

# KEYS: queue. ARGV: ticket. -> tickets still waiting
RELEASE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[1]) end
return left
"""


class ResilientRedisLockStore(LockStore):
    """Atomic, order-preserving ticket lock in Redis (see module doc)."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        host: Optional[Text] = None,
        port: Any = None,
        db: Any = None,
        password: Optional[Text] = None,
        key_prefix: Optional[Text] = None,
        poll_interval: Any = None,
        **options: Any,
    ) -> None:
        kwargs = dict(endpoint_config.kwargs) if endpoint_config is not None else {}
        kwargs.update({k: v for k, v in options.items() if v is not None})
        host = host or (endpoint_config.url if endpoint_config is not None else None) or "localhost"
        port = port if port is not None else kwargs.pop("port", 6379)
        db = db if db is not None else kwargs.pop("db", 0)
        password = password if password is not None else kwargs.pop("password", None)
        key_prefix = key_prefix if key_prefix is not None else kwargs.pop("key_prefix", None)
        poll_interval = poll_interval if poll_interval is not None else kwargs.pop("poll_interval", None)
        allowed = ("username", "use_ssl", "ssl_keyfile", "ssl_certfile", "ssl_ca_certs",
                   "socket_timeout", "socket_connect_timeout", "retries", "retry_backoff")
        extra = {k: kwargs[k] for k in allowed if kwargs.get(k) not in (None, "")}
        self.redis = ResilientRedis("lock store (Redis)", host=host, port=port, db=db, password=password, **extra)
        prefix = str(key_prefix or "").strip()
        if prefix and not prefix.isalnum():
            logger.warning("ignoring non-alphanumeric lock key prefix %r", prefix)
            prefix = ""
        self.key_prefix = f"{prefix}:lock:" if prefix else "lock:"
        self.poll_interval = max(0.005, as_float(poll_interval, DEFAULT_POLL_INTERVAL))
        self._pending_release: List[Tuple[Text, int]] = []
        super().__init__()

    def _keys(self, conversation_id: Text) -> Tuple[Text, Text]:
        base = self.key_prefix + conversation_id
        return base + ":seq", base + ":queue"

    # ------------------------------------------------------------------ the lock
    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        await self._retry_pending_releases()
        seq, queue = self._keys(conversation_id)
        ticket, state = (int(x) for x in await self.redis.call(
            lambda r: r.eval(ISSUE_AND_CHECK, 2, seq, queue, float(lock_lifetime))))
        try:
            await self._acquire(conversation_id, ticket, min(self.poll_interval, wait_time_in_seconds or 1), state)
            yield TicketLock(conversation_id)
        finally:
            await self.release(conversation_id, ticket)

    async def issue(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        seq, queue = self._keys(conversation_id)
        return int(await self.redis.call(lambda r: r.eval(ISSUE, 2, seq, queue, float(lock_lifetime))))

    async def check(self, conversation_id: Text, ticket: int) -> int:
        _, queue = self._keys(conversation_id)
        return int(await self.redis.call(lambda r: r.eval(CHECK, 1, queue, ticket)))

    async def _acquire(self, conversation_id: Text, ticket: int, interval: float, state: Optional[int] = None) -> None:
        """Wait for ``ticket``'s turn; ``state`` is a first :meth:`check` already made."""
        while True:
            if state is None:
                state = await self.check(conversation_id, ticket)
            if state == 1:
                return
            if state == -1:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}' (ticket expired).")
            await asyncio.sleep(interval)
            state = None

    async def release(self, conversation_id: Text, ticket: int) -> None:
        """Never raises: a release that fails is retried later (the ticket expires anyway)."""
        _, queue = self._keys(conversation_id)
        try:
            await self.redis.call(lambda r: r.eval(RELEASE, 1, queue, ticket))
        except StoreUnavailable:
            logger.warning("could not release a lock ticket; will retry on the next message")
            self._pending_release.append((conversation_id, ticket))
        except Exception:  # noqa: BLE001 - a release must not mask the turn's outcome
            logger.exception("could not release a lock ticket")

    async def _retry_pending_releases(self) -> None:
        pending, self._pending_release = self._pending_release, []
        for conversation_id, ticket in pending:
            await self.release(conversation_id, ticket)

    async def waiting(self, conversation_id: Text) -> int:
        """Tickets of this conversation not yet finished (tests, diagnostics)."""
        _, queue = self._keys(conversation_id)
        return int(await self.redis.call(lambda r: r.zcard(queue)))

    # ------------------------------------------------------------------ LockStore API
    # Rasa only uses `lock()`; the synchronous TicketLock methods of the base class do not
    # apply to this layout.
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        raise NotImplementedError("ResilientRedisLockStore is used through lock() only")

    def delete_lock(self, conversation_id: Text) -> None:
        raise NotImplementedError("ResilientRedisLockStore is used through lock() only")

    def save_lock(self, lock: TicketLock) -> None:
        raise NotImplementedError("ResilientRedisLockStore is used through lock() only")

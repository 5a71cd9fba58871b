"""A consecutive-failure circuit breaker for calls to outside services (the LLM, TTS):
after a few failures in a row no call goes out for a while, so a learner's turn never
waits on a service that is down."""
from __future__ import annotations

import logging
import time
from typing import Callable

logger = logging.getLogger(__name__)

DEFAULT_BREAKER_FAILURES = 3
DEFAULT_BREAKER_COOLDOWN = 60.0


class CircuitBreaker:
    """Consecutive-failure circuit breaker with an injectable clock.

    closed -> (``failure_threshold`` consecutive failures) -> open
    open -> (``cooldown`` seconds) -> half_open: exactly one trial call passes
    half_open -> success -> closed; failure -> open again (new cooldown).
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __init__(
        self,
        failure_threshold: int = DEFAULT_BREAKER_FAILURES,
        cooldown: float = DEFAULT_BREAKER_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        name: str = "LLM",
    ) -> None:
        self.name = name  # what it guards, in its log lines (the voice channel's TTS uses one too)
        self.failure_threshold = max(1, int(failure_threshold))
        self.cooldown = max(0.0, float(cooldown))
        self.clock = clock
        self._state = self.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._state == self.OPEN and self.clock() - self._opened_at >= self.cooldown:
            return self.HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go out now? (In half-open, reserves the single trial.)"""
        if self._state == self.CLOSED:
            return True
        if self._state == self.OPEN:
            if self.clock() - self._opened_at < self.cooldown:
                return False
            self._state = self.HALF_OPEN
            self._trial_in_flight = False
        # half-open: one trial at a time
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        if self._state != self.CLOSED:
            logger.info("%s circuit breaker closed", self.name)
        self._state = self.CLOSED
        self._failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self._state == self.HALF_OPEN or self._failures >= self.failure_threshold:
            if self._state != self.OPEN:
                logger.warning(
                    "%s circuit breaker open for %.0f s after %d consecutive failure(s)",
                    self.name,
                    self.cooldown,
                    self._failures,
                )
            self._state = self.OPEN
            self._opened_at = self.clock()

    def release(self) -> None:
        """The call was cancelled from outside: neither success nor failure."""
        if self._state == self.HALF_OPEN and self._trial_in_flight:
            self._trial_in_flight = False

    def reset(self) -> None:
        self._state = self.CLOSED
        self._failures = 0
        self._trial_in_flight = False

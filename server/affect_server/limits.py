"""Admission limits: how many conversations may be open, how fast each may send turns."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` turns per second on average, bursts of up to ``burst`` turns."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        self.rate, self.capacity, self._clock = rate, burst, clock
        self._tokens, self._last = burst, clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class ConversationSlots:
    """At most ``limit`` conversations open at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def acquire(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open = max(0, self.open - 1)

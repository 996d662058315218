"""When a refused client should come back: estimated from how fast the server has lately been
answering turns, and written into a call's trailers the two ways clients read it.

- ``grpc-retry-pushback-ms`` (``rules.RETRY_PUSHBACK_TRAILER``): the trailer gRPC's own retry policy honours;
- ``grpc-status-details-bin``: a ``google.rpc.Status`` carrying a ``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import grpc
from affect_proto import rules
from affect_server.limits import MAX_RETRY_HINT_MS as MAX_MS
from affect_server.limits import MIN_RETRY_HINT_MS as MIN_MS
from google.rpc import error_details_pb2, status_pb2

WINDOW_S = 3.0
"""The drain rate is read over the turns answered in the server's last 3 s of work (time with a
turn in flight; idle time does not count, nor age what was measured): several batches of a loaded
server, and a change of pace (heavier turns coming in) is seen within it."""
KEPT = 2048  # at most this many answered turns are kept: 1.3 s of the most a text server answers (1,600 a second)


class LatencyEstimate:
    """An exponentially weighted mean of turn latency (seconds)."""

    def __init__(self, initial_s: float = 0.2, weight: float = 0.1) -> None:
        self.mean_s, self._weight = initial_s, weight

    def observe(self, seconds: float) -> None:
        self.mean_s += self._weight * (seconds - self.mean_s)

    def retry_after_ms(self, backlog: int, workers: int) -> int:
        """About when the turns ahead will have drained: the mean latency times the backlog per worker."""
        return clamp_ms(self.mean_s * 1000 * max(1.0, backlog / max(1, workers)))


class DrainEstimate:
    """When the turns in flight will have drained: the backlog over the rate at which the server
    has lately answered turns (the turns answered in its last ``WINDOW_S`` of work, over that work's
    time). Micro-batching answers many turns in one pass of a model: 32 text turns answered
    together 20 ms after they came drain at 1,600 a second, where the mean latency times the
    backlog per worker (``LatencyEstimate``) counted 20 ms a turn per worker, a hint 16 times too
    long on two workers (refused text turns of a chatbot backend were told 0.887 s).
    Slow turns answered one after another drain slowly, and their hint is as long. Before the
    server has answered a turn the hint is ``LatencyEstimate``'s first guess (nothing observed yet).

    The work's time is the time with a turn in flight, from the turns' own receipt and answer:
    a turn adds the time from its receipt, or from the answer before it if that came later,
    to its answer. A server that idled between bursts keeps the rate it showed while it worked."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.latency = LatencyEstimate()
        self._clock = clock
        self._last_answer = float("-inf")
        self._work_s = 0.0  # the server's time with a turn in flight, over its life
        # Per answered turn, oldest first: the work's time before it and after it.
        self._answered: deque[tuple[float, float]] = deque(maxlen=KEPT)

    def answered(self, seconds: float) -> None:
        """A turn answered now, ``seconds`` after it was received."""
        now = self._clock()
        before = self._work_s
        self._work_s += max(0.0, now - max(now - seconds, self._last_answer))
        self._last_answer = max(self._last_answer, now)
        self._answered.append((before, self._work_s))
        while self._work_s - self._answered[0][1] >= WINDOW_S:  # never the turn just answered
            self._answered.popleft()

    def turns_per_second(self) -> float | None:
        """The recent drain rate, or None before any turn was answered."""
        if not self._answered:
            return None
        return len(self._answered) / max(self._work_s - self._answered[0][0], 1e-6)

    def retry_after_ms(self, backlog: int, workers: int) -> int:
        """About when the ``backlog`` turns in flight will have drained (at least one of them)."""
        rate = self.turns_per_second()
        if rate is None:
            return self.latency.retry_after_ms(backlog, workers)
        return clamp_ms(1000 * max(1, backlog) / rate)


def clamp_ms(ms: float) -> int:
    return int(min(MAX_MS, max(MIN_MS, ms)))


def retry_trailers(code: grpc.StatusCode, message: str, delay_ms: int) -> tuple[tuple[str, str | bytes], ...]:
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromMilliseconds(delay_ms)
    status.details.add().Pack(info)
    return ((rules.RETRY_PUSHBACK_TRAILER, str(delay_ms)), ("grpc-status-details-bin", status.SerializeToString()))

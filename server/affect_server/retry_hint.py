"""When a refused client should come back: estimated from recent turn latencies, and written
into a call's trailers the two ways clients read it.

- ``grpc-retry-pushback-ms`` (``rules.RETRY_PUSHBACK_TRAILER``): the trailer gRPC's own retry policy honours;
- ``grpc-status-details-bin``: a ``google.rpc.Status`` carrying a ``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import grpc
from affect_proto import rules
from google.rpc import error_details_pb2, status_pb2

MIN_MS, MAX_MS = 50, 10_000


class LatencyEstimate:
    """An exponentially weighted mean of turn latency (seconds)."""

    def __init__(self, initial_s: float = 0.2, weight: float = 0.1) -> None:
        self.mean_s, self._weight = initial_s, weight

    def observe(self, seconds: float) -> None:
        self.mean_s += self._weight * (seconds - self.mean_s)

    def retry_after_ms(self, backlog: int, workers: int) -> int:
        """About when the turns ahead will have drained: the mean latency times the backlog per worker."""
        return clamp_ms(self.mean_s * 1000 * max(1.0, backlog / max(1, workers)))


def clamp_ms(ms: float) -> int:
    return int(min(MAX_MS, max(MIN_MS, ms)))


def retry_trailers(code: grpc.StatusCode, message: str, delay_ms: int) -> tuple[tuple[str, str | bytes], ...]:
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromMilliseconds(delay_ms)
    status.details.add().Pack(info)
    return ((rules.RETRY_PUSHBACK_TRAILER, str(delay_ms)), ("grpc-status-details-bin", status.SerializeToString()))

"""The service's metrics on Ray Serve, recorded through ``ray.util.metrics``.

Each Ray node's metrics agent exports what its replicas record, beside Ray's and Serve's own
metrics, with Ray's ``ray_`` prefix (``ray_affect_turns_total``, ...) and a ``WorkerId`` per
replica; a cluster ``affect serve --ray --metrics-port N`` starts exports on port N. The names,
help texts and buckets are those of ``ServiceMetrics`` (one place: ``affect_server.metrics``);
the face deployments record their detector's counts (``FaceDetectorCounts``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.util.metrics import Counter, Gauge, Histogram

from affect_server.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, METRIC_HELP


_NOTHING: Callable[[], None] = lambda: None


class _Bound:
    """A metric with its label values bound, as ``prometheus_client``'s ``labels()`` gives."""

    def __init__(self, metric: Any, tags: dict[str, str], after: Callable[[], None]) -> None:
        self._metric, self._tags, self._after = metric, tags, after

    def inc(self, amount: float = 1.0) -> None:
        self._metric.inc(amount, tags=self._tags)
        self._after()

    def observe(self, value: float) -> None:
        self._metric.observe(value, tags=self._tags)
        self._after()


class _Labelled:
    def __init__(self, metric: Any, labels: tuple[str, ...], after: Callable[[], None] = _NOTHING) -> None:
        self._metric, self._labels, self._after = metric, labels, after

    def labels(self, *values: str) -> _Bound:
        return _Bound(self._metric, dict(zip(self._labels, values)), self._after)

    def inc(self, amount: float = 1.0) -> None:
        self._metric.inc(amount)
        self._after()


class _Level:
    """A gauge moved by ``inc``/``dec`` or read from a function. Ray's gauges export what was
    last set and are not read at a scrape, so a function gauge is set again whenever anything
    is recorded (``on_move``)."""

    def __init__(self, gauge: Gauge, on_move: Callable[[], None] = _NOTHING) -> None:
        self._gauge, self._value, self._on_move = gauge, 0.0, on_move
        self._function: Callable[[], float] | None = None
        gauge.set(0.0)

    def inc(self, amount: float = 1.0) -> None:
        self._value += amount
        self._gauge.set(self._value)
        self._on_move()

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)

    def set_function(self, function: Callable[[], float]) -> None:
        self._function = function
        self.refresh()

    def refresh(self) -> None:
        if self._function is not None:
            self._gauge.set(float(self._function()))


def batch_sizes() -> _Labelled:
    """Requests per forward pass, by encoder: recorded where the batches are made (the encoder
    deployments)."""
    return _Labelled(Histogram("affect_batch_size", METRIC_HELP["batch_size"], boundaries=list(BATCH_BUCKETS),
                               tag_keys=("encoder",)), ("encoder",))


class RayServiceMetrics:
    """What ``AffectServicer`` records, with ``ServiceMetrics``' interface."""

    def __init__(self) -> None:
        self.turn_latency = _Labelled(Histogram("affect_turn_latency_seconds", METRIC_HELP["turn_latency"],
                                                boundaries=list(LATENCY_BUCKETS), tag_keys=("modalities",)), ("modalities",))
        refresh = self._refresh
        self.batch_size = batch_sizes()
        self.conversation_states = _Level(Gauge("affect_conversation_states", METRIC_HELP["conversation_states"]))
        self.active_conversations = _Level(Gauge("affect_active_conversations", METRIC_HELP["active_conversations"]),
                                           on_move=refresh)
        self.turns = _Labelled(Counter("affect_turns", METRIC_HELP["turns"]), (), after=refresh)
        self.refused = _Labelled(Counter("affect_refused", METRIC_HELP["refused"], tag_keys=("code", "reason")),
                                 ("code", "reason"), after=refresh)

    def _refresh(self) -> None:
        self.conversation_states.refresh()

    def observe_batch(self, encoder: str, size: int) -> None:
        self.batch_size.labels(encoder).observe(size)


class FaceDetectorCounts:
    """A face detector's searches by kind and the windows its model read, as the in-process
    server exports them; Ray's counters are increased, not read at a scrape, so ``record`` adds
    what the detector counted since its last call (after each batch)."""

    def __init__(self, detector: Any) -> None:
        self._detector = detector
        self._searches = Counter("affect_face_searches", METRIC_HELP["face_searches"], tag_keys=("kind",))
        self._windows = Counter("affect_face_detector_windows", METRIC_HELP["face_windows"])
        self._recorded: dict[str, int] = {}
        self._recorded_windows = 0

    def record(self) -> None:
        for kind, count in dict(self._detector.searches).items():
            if count > self._recorded.get(kind, 0):
                self._searches.inc(count - self._recorded.get(kind, 0), tags={"kind": kind})
                self._recorded[kind] = count
        windows = self._detector.model.windows_read
        if windows > self._recorded_windows:
            self._windows.inc(windows - self._recorded_windows)
            self._recorded_windows = windows

"""Prometheus metrics of the service, on their own registry (served by ``--metrics-port``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


METRIC_HELP = {
    "turn_latency": "Time from a turn's receipt (its message read) to its result, by modalities present: reading its "
                    "media headers, decoding, waiting for a worker and the models; the time on the wire is the client's.",
    "batch_size": "Requests per encoder forward pass.",
    "active_conversations": "Conversation streams open now.",
    "conversation_states": "Conversation states held in memory (must fall back to the open streams).",
    "turns": "Turns answered with a result.",
    "refused": "Refusals and ends, by the gRPC status the client gets and a reason: calls refused (admission, "
               "a bad opening, no token), turns and speaker resets refused (the stream goes on), and conversation "
               "streams the server ended (idle, an answer unread, draining, taken over by a resume).",
    "face_searches": "Face detector searches by kind: full (the window pyramid), focused (around the faces a "
                     "conversation follows), focused_then_full (an expected face was not there).",
    "face_windows": "Windows the face detector's model read (its cost).",
}


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turn_latency = Histogram("affect_turn_latency_seconds", METRIC_HELP["turn_latency"], ["modalities"],
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("affect_batch_size", METRIC_HELP["batch_size"], ["encoder"], buckets=BATCH_BUCKETS,
                                    registry=self.registry)
        self.active_conversations = Gauge("affect_active_conversations", METRIC_HELP["active_conversations"],
                                          registry=self.registry)
        self.conversation_states = Gauge("affect_conversation_states", METRIC_HELP["conversation_states"],
                                         registry=self.registry)
        self.turns = Counter("affect_turns_total", METRIC_HELP["turns"], registry=self.registry)
        self.refused = Counter("affect_refused_total", METRIC_HELP["refused"], ["code", "reason"], registry=self.registry)

    def watch_face_detector(self, searches: Callable[[], Mapping[str, int]], windows: Callable[[], int]) -> None:
        """Expose the face detector's own counts, read at each scrape: its searches by kind and the
        windows its model read (the detector's cost; see ``affect.face._detect.BlazeFaceDetector``)."""
        self.registry.register(_FaceDetectorCollector(searches, windows))

    def observe_batch(self, encoder: str, size: int) -> None:
        self.batch_size.labels(encoder).observe(size)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)


class _FaceDetectorCollector(Collector):
    def __init__(self, searches: Callable[[], Mapping[str, int]], windows: Callable[[], int]) -> None:
        self._searches, self._windows = searches, windows

    def collect(self) -> Iterator[Metric]:
        by_kind = CounterMetricFamily("affect_face_searches", METRIC_HELP["face_searches"], labels=["kind"])
        for kind, count in self._searches().items():
            by_kind.add_metric([kind], count)
        yield by_kind
        yield CounterMetricFamily("affect_face_detector_windows", METRIC_HELP["face_windows"], value=self._windows())

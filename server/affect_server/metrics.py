"""Prometheus metrics of the service, on their own registry (served by ``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turn_latency = Histogram(
            "affect_turn_latency_seconds", "Time from a turn's arrival to its answer, by modalities present.",
            ["modalities"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram(
            "affect_batch_size", "Requests per encoder forward pass.", ["encoder"], buckets=BATCH_BUCKETS,
            registry=self.registry)
        self.active_conversations = Gauge(
            "affect_active_conversations", "Conversation streams open now.", registry=self.registry)
        self.conversation_states = Gauge(
            "affect_conversation_states", "Conversation states held in memory (must fall back to the open streams).",
            registry=self.registry)
        self.turns = Counter("affect_turns_total", "Turns answered with a result.", registry=self.registry)
        self.refused = Counter(
            "affect_refused_total", "Requests refused, by gRPC status and reason.", ["code", "reason"],
            registry=self.registry)

    def observe_batch(self, encoder: str, size: int) -> None:
        self.batch_size.labels(encoder).observe(size)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

"""Building and running the gRPC server: the servicer, health, reflection, auth, TLS, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from affect import Analyzer
from affect_client._proto import affect_pb2 as pb
from affect_client._proto import affect_pb2_grpc as pb_grpc
from affect_server.auth import BearerTokenInterceptor
from affect_server.batching import MicroBatcher
from affect_server.config import ServerConfig
from affect_server.metrics import ServiceMetrics
from affect_server.servicer import AffectServicer

log = logging.getLogger("affect.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AffectService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    servicer: AffectServicer
    health: health.aio.HealthServicer
    port: int
    executor: ThreadPoolExecutor

    async def drain_and_stop(self, grace: float) -> None:
        """Stop accepting, let the turns in flight finish (up to ``grace`` s), then stop."""
        log.info("draining: %d conversations open, %d turns in flight", self.servicer.slots.open, self.servicer.in_flight)
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.servicer.draining.set()
        await self.server.stop(grace)
        for batcher in self.servicer.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True)
        log.info("stopped")


def set_model_threads(threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


async def start_server(config: ServerConfig, analyzer: Analyzer | None = None) -> RunningServer:
    set_model_threads(config.threads_per_worker())  # before the encoders load: CTranslate2 reads it then
    analyzer = analyzer or Analyzer(**config.analyzer_choices())
    metrics = ServiceMetrics()
    executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="affect-model")
    batchers: dict[str, MicroBatcher] = {}
    in_flight = (lambda: servicer.in_flight) if config.adaptive_batch_wait else None  # noqa: E731 - read once the servicer exists
    if analyzer.text is not None:
        batchers["text"] = MicroBatcher("text", analyzer.text.analyze_many, executor=executor,
                                        max_size=config.batch_max_size, max_wait=config.batch_max_wait_ms / 1000,
                                        on_batch=metrics.observe_batch, demand=in_flight)
    if analyzer.speech is not None:
        batchers["speech"] = MicroBatcher("speech", analyzer.speech.analyze_prepared, executor=executor,
                                          max_size=config.batch_max_size, max_wait=config.batch_max_wait_ms / 1000,
                                          on_batch=metrics.observe_batch, demand=in_flight)
    if analyzer.face is not None:
        batchers["face"] = MicroBatcher("face", analyzer.face_many, executor=executor,
                                        max_size=config.batch_max_size, max_wait=config.batch_max_wait_ms / 1000,
                                        on_batch=metrics.observe_batch, demand=in_flight)
    for batcher in batchers.values():
        batcher.start()

    max_bytes = int(config.max_message_mb * 2**20)
    interceptors = [BearerTokenInterceptor(config.token)] if config.token else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes),
                 ("grpc.so_reuseport", 0)],
    )
    servicer = AffectServicer(analyzer, config, metrics, batchers, executor)
    pb_grpc.add_AffectServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    address = f"{config.host}:{config.port}"
    if config.tls_cert:
        credentials = grpc.ssl_server_credentials([(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise SystemExit(f"affect serve: cannot listen on {address}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    if config.metrics_port:
        metrics.serve(config.metrics_port, config.host)
    log.info("affect serving on %s:%d (%s), models %s", config.host, port, "TLS" if config.tls_cert else "plaintext",
             ", ".join(analyzer.models.values()))
    return RunningServer(server, servicer, health_servicer, port, executor)


async def serve(config: ServerConfig, analyzer: Analyzer | None = None, *, ready_file: Path | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain gracefully."""
    running = await start_server(config, analyzer)
    if ready_file:
        ready_file.write_text(str(running.port))
    print(f"affect: serving on {config.host}:{running.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.drain_and_stop(config.grace_s)

"""Building and running the gRPC server: the servicer, health, reflection, auth, TLS, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from affect import Analyzer
from affect.results import MODALITIES
from affect.turn_flow import ModalityTurns, batch_call
from affect_proto import rules
from affect_server.auth import BearerTokenInterceptor
from affect_server.batching import MicroBatcher
from affect_server.config import ServerConfig
from affect_server.logs import announce
from affect_server.metrics import ServiceMetrics
from affect_server.priority import lower_this_thread
from affect_server.servicer import SERVICE_NAME, AffectServicer, Lane, method_handlers

if TYPE_CHECKING:
    from affect.speech import SpeechEncoder

log = logging.getLogger("affect.server")


@dataclass
class RunningServer:
    server: grpc.aio.Server
    servicer: AffectServicer
    health: health.aio.HealthServicer
    port: int
    executor: ThreadPoolExecutor
    executors: tuple[ThreadPoolExecutor, ...] = ()

    async def drain_and_stop(self, grace: float) -> bool:
        """Stop accepting, let the turns in flight finish (up to ``grace`` s), then stop. True
        when every model call had finished; False when some still run in a worker thread
        (they cannot be interrupted: the caller should end the process)."""
        log.info("draining: %d conversations open, %d turns in flight", self.servicer.slots.open, self.servicer.in_flight)
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.servicer.draining.set()
        # The service's own calls end (conversations and Analyze calls are told UNAVAILABLE); then
        # the others (an idle Health.Watch stream) need not hold the stop for the whole grace period,
        # which is what an orchestrator gives the process before it kills it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while not self.servicer.idle() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await self.server.stop(0 if self.servicer.idle() else max(0.0, deadline - loop.time()))
        lanes = {id(lane): lane for lane in (self.servicer.lane, self.servicer.heavy_lane)}.values()
        for lane in lanes:
            for batcher in lane.batchers.values():
                await batcher.stop()
        executors = self.executors or (self.executor,)
        for executor in executors:
            executor.shutdown(wait=False, cancel_futures=True)
        busy = await _busy_threads(executors, wait=1.0)
        if busy:
            log.warning("stopped with %d model call(s) still running after the %g s grace period", busy, grace)
        else:
            log.info("stopped")
        return busy == 0


async def _busy_threads(executors: Iterable[Executor], wait: float) -> int:
    """Worker threads still alive after ``wait`` seconds (each holds a model call)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        alive = sum(t.is_alive() for executor in executors for t in list(getattr(executor, "_threads", ())))
        if not alive or loop.time() >= deadline:
            return alive
        await asyncio.sleep(0.05)


def _own_speech_encoder(shared: SpeechEncoder, threads: int) -> SpeechEncoder:
    """A second instance of the loaded speech encoder (same weights, settings and runtime). It
    reads through the loaded one's channel reader: adapting (``--speech-adapt``), a long clip is
    read against, and counts in, the same running statistics as every other turn."""
    encoder = type(shared)(weights=shared.weights, max_seconds=shared.max_seconds, threads=threads,
                           vad=shared.vad.settings)
    encoder.reader = shared.reader  # its statistics lock their own updates
    runtime = getattr(shared, "runtime", "torch")  # set by affect.onnx.use_runtime
    if runtime != "torch":
        from affect.onnx import use_runtime

        use_runtime(encoder, runtime)
    return encoder


def set_model_threads(threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def _bind(server: grpc.aio.Server, config: ServerConfig) -> int:
    """Listen on the configured address (TLS if configured); one line and exit if impossible."""
    host = config.bare_host
    address = f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"  # an IPv6 literal is bracketed
    problem = _bind_problem(host, config.port)  # asked first: gRPC would log its own error lines
    if problem:
        raise SystemExit(f"affect serve: cannot listen on {address}: {problem}")
    try:
        if config.tls_cert and config.tls_key:  # ServerConfig.check refuses one without the other
            credentials = grpc.ssl_server_credentials([(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise SystemExit(f"affect serve: cannot listen on {address}")
    if config.metrics_port:  # served once the models are loaded: asked now, so that a mistake costs no loading
        problem = "it is the gRPC port" if config.metrics_port == port else _bind_problem(host, config.metrics_port)
        if problem:
            raise SystemExit(f"affect serve: cannot serve metrics on port {config.metrics_port}: {problem}")
    return port


def _bind_problem(host: str, port: int) -> str | None:
    """Why the address cannot be listened on, as the operating system says for a plain socket
    (bound as gRPC binds, with SO_REUSEADDR), or None."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"unknown host ({exc.strerror or exc})"
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                return exc.strerror or str(exc)
    return None


def _add_service(server: grpc.aio.Server, servicer: AffectServicer) -> None:
    """The AffectService handlers (``method_handlers``), Analyze read as a client stream so that
    a call refused by admission or auth is refused before its body is read."""
    handlers = method_handlers(servicer.converse_written, servicer.analyze_unread, servicer.ListModels, analyze_streamed=True)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)

MODALITY_NAMES = tuple(m.value for m in MODALITIES)


def _batchers(analyzer: Analyzer, config: ServerConfig, executor: Executor, metrics: ServiceMetrics, *, max_size: int,
              max_wait: float, demand: Callable[[], int] | None, modalities: tuple[str, ...] = MODALITY_NAMES,
              concurrency: int = 1, lane: str = "") -> dict[str, MicroBatcher]:
    """One batcher per encoder, named by its modality (``speech``; ``speech-heavy`` in a named lane:
    the name is the ``encoder`` label of the batch-size metric)."""
    return {m.value: MicroBatcher(f"{m.value}-{lane}" if lane else m.value, batch_call(encoder), executor=executor,
                                  max_size=max_size, max_wait=max_wait, on_batch=metrics.observe_batch, demand=demand,
                                  concurrency=concurrency)
            for m, encoder in analyzer.encoders.items() if m.value in modalities}


# The server pings each connection that has a call open, and drops one whose ping goes unanswered:
# a conversation whose client's connection broke without a reset (a NAT timeout, a network blip)
# is freed within about 20 s, not at idle_timeout_s. The Python client's resume takes such a
# conversation over at once (OpenConversation.resume, AffectServicer.Converse); a client without
# it (retrying ALREADY_EXISTS, as that client did for 30 s) finds it gone then.
# (gRPC 1.85 times a ping out after grpc.http2.ping_timeout_ms, 60 s by default, whatever
# keepalive_timeout_ms says: both are set.)
# Clients ping too (the Python client's keepalive_s, its own way to learn that its path died) when
# nothing has reached them for a while, as often as every rules.MIN_KEEPALIVE_S: a ping less than
# half of that after the one before, with nothing sent between, is a strike, and the third ends the
# connection (GOAWAY "too_many_pings"). gRPC's default, 5 minutes, ended a quiet conversation whose
# client pinged every 5 s within 20 s (a client pinging more often than this server does puts the
# server's pings off; one pinging less often, 15 s as the client README recommends, sends none while they arrive).
KEEPALIVE = [("grpc.keepalive_time_ms", 10_000), ("grpc.keepalive_timeout_ms", 10_000),
             ("grpc.http2.ping_timeout_ms", 10_000), ("grpc.http2.max_pings_without_data", 0),
             ("grpc.http2.min_ping_interval_without_data_ms", round(rules.MIN_KEEPALIVE_S * 1000 / 2)),
             ("grpc.http2.max_ping_strikes", 2)]


# Requests arrive uncompressed or not at all: a gzip-compressed request of 15 KB on the wire
# inflated to a 15 MiB one (``max_receive_message_length`` bounds the inflated size only), so
# that a few kilobytes a call made the server parse and hold hundreds of megabytes. With only
# identity enabled gRPC refuses a compressed request itself, before it is inflated: the call ends
# with UNIMPLEMENTED "Compression algorithm 'gzip' is disabled." (a grpc.aio client whose write
# races that refusal reports INTERNAL "Internal error from Core"; the server's answers were never
# compressed).
IDENTITY_ONLY = 1  # the bitset of grpc_compression_algorithm: bit 0, GRPC_COMPRESS_NONE
# Streams one connection may hold beside its conversations and Analyze calls: a Health.Watch,
# ListModels, reflection.
OTHER_STREAMS_PER_CONNECTION = 8


def connection_options(config: ServerConfig) -> list[tuple[str, int]]:
    """gRPC's per-connection limits. A connection is one client's, which may hold at most
    ``max_conversations_per_peer`` conversations (and a spare slot to resume one),
    ``max_analyze_per_peer`` Analyze calls and ``max_analyze_queued_per_peer`` waiting for them:
    HTTP/2's MAX_CONCURRENT_STREAMS is set to that and a few more streams (unset, it is unlimited). Beyond it, gRPC's defence against a client that
    opens and resets streams faster than they are served (HTTP/2 "rapid reset") applies: streams
    over the limit are refused after a delay, and reading the connection pauses while it owes
    many answers to the client's frames."""
    streams = (config.max_conversations_per_peer + 1 + config.max_analyze_per_peer + config.max_analyze_queued_per_peer
               + OTHER_STREAMS_PER_CONNECTION)
    return [("grpc.compression_enabled_algorithms_bitset", IDENTITY_ONLY), ("grpc.max_concurrent_streams", streams)]


def models_and_licences(analyzer: Analyzer) -> str:
    """The line ``affect serve`` logs once its models are loaded: the models a turn may go through
    (the encoders, the fusion head when two or more encoders can meet in a turn, the forecaster)
    and their licences, from their weights entries (``affect.registry.licences``)."""
    forecaster = analyzer.forecaster.model_id if analyzer.forecaster is not None else None
    return _licence_line(list(analyzer.models.values()), forecaster)


def configured_models_and_licences(config: ServerConfig) -> str:
    """``models_and_licences`` for the models ``config`` serves, read from their weights entries
    without loading them: ``affect serve --ray`` logs it, its models being loaded in Ray's
    workers. The ingress runs the shipped forecaster."""
    from affect.forecast import ForecastWeights

    return _licence_line(configured_model_ids(config), ForecastWeights.DEFAULT.value.id)


def configured_model_ids(config: ServerConfig) -> list[str]:
    """The weights ids of the encoders ``config`` serves, each resolved as ``affect.Analyzer``
    resolves it, without loading them: plain ``affect serve`` calls it to check the names before
    it loads them. A name no family knows is refused as the other settings are (``SystemExit``,
    "affect serve: --face-model: unknown FaceWeights 'bogus'; known ...": one line, exit status
    2), before a model loads or Ray starts."""
    from affect._errors import UnknownModelError
    from affect.registry import ENCODER_FAMILIES, model_choice
    from affect.results import MODALITIES

    ids = []
    for modality in (m.value for m in MODALITIES):
        setting = f"{modality}_model"
        try:
            choice = model_choice(modality, getattr(config, setting))
        except UnknownModelError as exc:
            raise SystemExit(f"affect serve: {config.source(setting)}: {exc}") from None
        if choice is not None:
            ids.append(ENCODER_FAMILIES[modality].resolve(choice if isinstance(choice, str) else None).value.id)
    return ids


def _licence_line(encoder_ids: list[str], forecaster_id: str | None) -> str:
    from affect.fusion import FusionWeights
    from affect.registry import licences

    ids = list(encoder_ids)
    if len(ids) > 1:
        ids.append(FusionWeights.DEFAULT.value.id)  # affect.fusion.fuse's head
    if forecaster_id is not None:
        ids.append(forecaster_id)
    return f"models loaded: {', '.join(ids)}; licences: {licences(ids)}: see `affect models`"


async def start_server(config: ServerConfig, analyzer: Analyzer | None = None) -> RunningServer:
    """Check the settings, bind the port and check the weights names (when the models are loaded
    here) first: a mistake there is one line, before any model loads. Then load the models and
    start serving."""
    for warning in config.check():
        log.warning("%s", warning)
    max_bytes = config.max_message_bytes
    metrics = ServiceMetrics()
    interceptors = [BearerTokenInterceptor(config.token, on_refused=lambda reason: metrics.refused.labels(
        grpc.StatusCode.UNAUTHENTICATED.name, reason).inc())] if config.token else []
    # BDP probing off: a stream the server does not read keeps HTTP/2's initial window (64 KiB),
    # and gRPC buffers no more of its request than that. With it on, gRPC grew the windows of
    # unread streams and took in their whole requests: 50 waiting 15 MiB Analyze calls held
    # 4 MB with it off, 750 MB with it on (config.ServerConfig.waiting_requests_bytes).
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes),
                 ("grpc.so_reuseport", 0), ("grpc.http2.bdp_probe", 0), *KEEPALIVE, *connection_options(config)],
    )
    port = _bind(server, config)
    if analyzer is None:
        configured_model_ids(config)  # a weights name no family knows: one line, before any model loads

    set_model_threads(config.threads_per_worker())  # before the encoders load: CTranslate2 reads it then
    if analyzer is None:
        log.info("loading the models")
    analyzer = analyzer or Analyzer(**config.analyzer_choices(), encoder_options=config.encoder_options(),
                                    runtime=config.runtime)
    log.info("%s", models_and_licences(analyzer))
    log.info("memory beside the models, at most: %.1f GiB of turns in flight (--max-in-flight-mb), %.1f GiB of "
             "requests partly received ((--max-conversations %d + --max-analyze-in-flight %d) x --max-message-mb %g) "
             "and %.0f MiB of Analyze calls waiting unread (--max-analyze-queued-per-peer %d)",
             config.max_in_flight_mb / 1024, config.requests_on_the_way_bytes / 2**30, config.max_conversations,
             config.max_analyze_in_flight, config.max_message_mb, config.waiting_requests_bytes / 2**20,
             config.max_analyze_queued_per_peer)
    detector = getattr(getattr(analyzer, "face", None), "detector", None)  # a loaded face encoder's
    if detector is not None and hasattr(detector, "searches"):
        metrics.watch_face_detector(lambda: dict(detector.searches), lambda: detector.model.windows_read)
    executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="affect-model")
    # Heavy turns (long audio, many pixels) get one worker and batchers of their own, at the
    # lowest CPU priority: they use the cores the other conversations leave.
    heavy_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="affect-heavy", initializer=lower_this_thread)
    servicer: AffectServicer  # made below, once its batchers exist
    in_flight = (lambda: servicer.in_flight) if config.adaptive_batch_wait else None  # noqa: E731 - read once the servicer exists
    batchers = _batchers(analyzer, config, executor, metrics, max_size=config.batch_max_size,
                         max_wait=config.batch_max_wait_ms / 1000, demand=in_flight,
                         concurrency=config.batch_concurrency)
    heavy_batchers = _batchers(analyzer, config, heavy_executor, metrics, max_size=config.max_heavy_turns, max_wait=0.0,
                               demand=None, modalities=("face", "speech"), lane="heavy")
    if analyzer.speech is not None and not isinstance(analyzer.speech, ModalityTurns):  # a loaded model, not a stand-in
        # Its own speech model, built in the low-priority thread so that the model's own
        # threads inherit the priority: a heavy turn never queues in front of the others'.
        speech = heavy_executor.submit(_own_speech_encoder, analyzer.speech, config.threads_per_worker()).result()
        heavy_batchers["speech"] = MicroBatcher("speech-heavy", batch_call(speech), executor=heavy_executor,
                                                max_size=config.max_heavy_turns, max_wait=0.0, on_batch=metrics.observe_batch)
    for batcher in (*batchers.values(), *heavy_batchers.values()):
        batcher.start()

    servicer = AffectServicer(analyzer, config, metrics, batchers, executor, heavy=Lane(heavy_executor, heavy_batchers),
                              max_message_bytes=max_bytes)
    _add_service(server, servicer)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    if config.metrics_port:
        metrics.serve(config.metrics_port, config.bare_host)
    log.info("affect serving on %s:%d (%s), models %s", config.host, port, "TLS" if config.tls_cert else "plaintext",
             ", ".join(analyzer.models.values()))
    return RunningServer(server, servicer, health_servicer, port, executor, (executor, heavy_executor))


async def serve(config: ServerConfig, analyzer: Analyzer | None = None, *, ready_file: Path | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain gracefully: exit within the grace period and a
    second or so. A second signal during the drain ends the process at once. (Before this
    serves, ``affect serve`` stops at once on either: ``affect_server.cli``.)"""
    running = await start_server(config, analyzer)
    if ready_file:
        ready_file.write_text(str(running.port))
    announce(f"affect: serving on {config.host}:{running.port}", log.name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            log.info("%s: draining (up to %g s); send it again to stop at once", signal.Signals(signum).name, config.grace_s)
            stop.set()
            return
        log.warning("%s again: stopping now, without waiting for the turns in flight", signal.Signals(signum).name)
        _exit_now(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await stop.wait()
    if not await running.drain_and_stop(config.grace_s):
        _exit_now(0)  # the drain is over; only uninterruptible model calls are left, which the exit ends


def _exit_now(code: int) -> None:
    """End the process without waiting for worker threads (Python would join them at exit)."""
    import os
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

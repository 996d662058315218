"""The affect service as a Ray Serve application: the same servicer and proto, scaled out.

Deployments:

- ``AffectIngress`` holds conversations. Ray's gRPC proxy sends each ``Converse`` stream, as
  one request, to one ingress replica, which keeps that conversation's state (a few text
  embeddings and the affect trajectory) for the stream's life. It decodes and checks turns
  (cheap) and loads no model.
- ``text-encoder``, ``speech-encoder``, ``face-encoder``: one deployment per encoder, each with
  its own replica count (or autoscaling on ongoing requests) and its own batching
  (``@serve.batch``), so a costly encoder scales apart from the cheap ones.
- ``speech-encoder-heavy``, ``face-encoder-heavy``: the heavy lane (``RaySettings.heavy``): a
  turn with more audio or pixels than the server's ``heavy_*`` settings is read there, in batches
  of at most ``max_heavy_turns`` sent at once and at the lowest CPU priority (as is the
  ingress's thread that decodes such turns), so that a ten-minute clip never holds up a batch of
  short turns; as in one process (``affect_server.app``).

Build it with :func:`build_app` (``affect serve --ray`` does) or let ``serve run`` /
``serve deploy`` call :func:`app_builder` from a Serve config file (``deploy/ray-serve.yaml``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import grpc
from ray import serve
from ray.serve import Application

from affect.results import MODALITIES as LIB_MODALITIES
from affect_proto import rules
from affect_server.auth import REFUSAL, token_refusal
from affect_server.batching import batch_or_each
from affect_server.config import ServerConfig

if TYPE_CHECKING:
    from affect_proto import affect_pb2 as pb

log = logging.getLogger("affect.server.ray")
GRPC_SERVICER_FUNCTION = "affect_server.ray_app.add_affect_service"
MODALITIES = tuple(m.value for m in LIB_MODALITIES)  # one deployment per encoder, in the library's order
HEAVY_MODALITIES = ("speech", "face")  # the encoders whose turns can be heavy (long audio, many pixels)
HEAVY_SUFFIX = "_heavy"  # the ingress's name for a heavy lane's handle: speech_heavy, face_heavy


def add_affect_service(servicer: Any, server: Any) -> None:
    """How Serve's gRPC proxy learns the service (``GRPC_SERVICER_FUNCTION``): the handlers of
    the in-process server (``affect_server.servicer.method_handlers``, Analyze as one message),
    so that a message that does not parse reaches the ingress as one refused turn; with the
    generated function, the proxy ended the stream instead."""
    from affect_server.servicer import SERVICE_NAME, method_handlers

    handlers = method_handlers(servicer.Converse, servicer.Analyze, servicer.ListModels, analyze_streamed=False)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


@dataclass
class DeploymentScale:
    """Replicas of one deployment: fixed (``replicas``) or autoscaled on ongoing requests."""

    replicas: int = 1
    max_replicas: int = 0  # > replicas: autoscale between the two
    target_ongoing_requests: float = 16.0
    num_cpus: float = 1.0
    max_ongoing_requests: int = 256

    def __post_init__(self) -> None:
        """Refused here, in one line naming the setting, rather than by Serve after Ray has started."""
        _whole("max_replicas", self.max_replicas, 0)
        _whole("replicas", self.replicas, 0 if self.max_replicas > 0 else 1)  # 0 only as an autoscaling floor
        _whole("max_ongoing_requests", self.max_ongoing_requests, 1)
        _number("target_ongoing_requests", self.target_ongoing_requests, positive=True)
        _number("num_cpus", self.num_cpus, positive=False)

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"ray_actor_options": {"num_cpus": self.num_cpus},
                                "max_ongoing_requests": self.max_ongoing_requests}
        if self.max_replicas > self.replicas:
            opts["autoscaling_config"] = {"min_replicas": self.replicas, "max_replicas": self.max_replicas,
                                          "target_ongoing_requests": self.target_ongoing_requests}
        else:
            opts["num_replicas"] = self.replicas
        return opts


@dataclass
class RaySettings:
    """How the application is laid out on the cluster (``affect serve --ray-config FILE.json``)."""

    ingress: DeploymentScale = field(default_factory=lambda: DeploymentScale(
        replicas=1, max_replicas=4, target_ongoing_requests=64, num_cpus=0.5, max_ongoing_requests=1000))
    text: DeploymentScale = field(default_factory=lambda: DeploymentScale(num_cpus=0.5))
    speech: DeploymentScale = field(default_factory=lambda: DeploymentScale(num_cpus=0.5))
    face: DeploymentScale = field(default_factory=lambda: DeploymentScale(num_cpus=0.5))
    # Each heavy lane (None: none). No CPU reserved: like the one-process server's heavy worker,
    # it is idle but for the rare heavy turn and then uses what the other replicas leave; the
    # four deployments above already fill two cores at their defaults.
    heavy: DeploymentScale | None = field(default_factory=lambda: DeploymentScale(num_cpus=0.0))
    model_threads: int = 1  # torch threads per encoder replica: scale with replicas, not threads

    def __post_init__(self) -> None:
        _whole("model_threads", self.model_threads, 1)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RaySettings":
        known = {f.name for f in fields(DeploymentScale)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "heavy" and value is None:
                values[key] = None
            elif key in ("ingress", "heavy", *MODALITIES):
                if not isinstance(value, dict):
                    raise ValueError(f"{key} must be an object of settings, got {value!r}")
                unknown = set(value) - known
                if unknown:
                    raise ValueError(f"unknown settings for {key}: {sorted(unknown)}")
                try:
                    values[key] = DeploymentScale(**value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
            elif key == "model_threads":
                values[key] = value
            else:
                raise ValueError(f"unknown Ray setting {key!r}")
        return cls(**values)


def _whole(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be a whole number of at least {least}, got {value!r}")


def _number(name: str, value: Any, *, positive: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} number, got {value!r}")


class _RayContext:
    """The grpc.aio context calls the servicer makes, on Ray's serialisable gRPC context."""

    def __init__(self, context: Any) -> None:
        self._context = context

    async def abort(self, code: grpc.StatusCode, details: str,
                    trailing_metadata: Iterable[tuple[str, str | bytes]] = ()) -> None:
        """Serve's proxy ends the call with the code and message set here when the method raises,
        and drops the trailing metadata (Ray 2.60, measured: docs/deploy-ray.md): the text
        trailers (the refused field, the reason, the retry hint) go at the end of the message too,
        where the client reads them (``rules.message_with_trailers``)."""
        trailers = list(trailing_metadata)
        message = rules.message_with_trailers(details, trailers)
        self._context.set_code(code)
        self._context.set_details(message)
        if trailers and hasattr(self._context, "set_trailing_metadata"):
            self._context.set_trailing_metadata(trailers)
        raise _Aborted.logged_as(code, trailers) from None  # nor the refused input's error as its context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _Aborted(Exception):
    """A call the servicer ended (``_RayContext.abort``). Serve logs what a method raises, its
    message and traceback, to the replica's and the proxy's log files ("Request failed.", Ray 2.60,
    with no setting to leave expected refusals out), so this carries only the status code and the
    reason word: the message, which may quote what a caller sent, reaches the caller through the
    context's details alone."""

    @classmethod
    def logged_as(cls, code: grpc.StatusCode, trailers: Iterable[tuple[str, str | bytes]]) -> _Aborted:
        reason = dict(trailers).get(rules.ABORT_REASON_TRAILER)
        return cls(f"{code.name} ({reason})" if isinstance(reason, str) else code.name)


@serve.deployment
class EncoderDeployment:
    """One encoder, its requests batched across every conversation of every ingress replica."""

    def __init__(self, modality: str, model: Any, max_batch_size: int, batch_wait_s: float, threads: int,
                 runtime: str = "auto", options: dict[str, Any] | None = None, lane: str = "") -> None:
        import torch

        from affect import Analyzer, Modality
        from affect.turn_flow import batch_call
        from affect_server.priority import lower_this_process
        from affect_server.ray_metrics import FaceDetectorCounts, batch_sizes

        if lane == "heavy":  # before the model exists, so that its threads inherit the priority
            lower_this_process()
        torch.set_num_threads(max(1, threads))
        choice = {m: None for m in MODALITIES} | {modality: model}
        analyzer = Analyzer(**choice, runtime=runtime,  # the server's --runtime and encoder settings, as in one process
                            encoder_options={modality: options or {}})
        encoder = analyzer.encoders[Modality(modality)]
        self.front = encoder.turns  # what a conversation needs of this encoder, picklable, no model
        self._run = batch_call(encoder)  # changes no conversation: the ingress records the answers
        self._batch_label = f"{modality}-{lane}" if lane else modality  # as affect_server.app._batchers names them
        self._batch_sizes = batch_sizes()
        detector = getattr(encoder, "detector", None)  # a face encoder's
        self._detector_counts = FaceDetectorCounts(detector) if hasattr(detector, "searches") else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{modality}-encoder")
        self.run.set_max_batch_size(max_batch_size)  # type: ignore[attr-defined]  # added by @serve.batch
        self.run.set_batch_wait_timeout_s(batch_wait_s)  # type: ignore[attr-defined]
        log.info("%s encoder ready: %s", modality, encoder.model_id)

    async def describe(self) -> Any:
        """The stand-in an ingress replica builds its conversations with (the encoder's ``turns``)."""
        return self.front

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def run(self, items: list[Any]) -> list[Any]:
        self._batch_sizes.labels(self._batch_label).observe(len(items))
        answers = await asyncio.get_running_loop().run_in_executor(
            self._executor, batch_or_each, self._run, items, self._batch_label)  # a failed batch: each alone
        if self._detector_counts is not None:
            self._detector_counts.record()
        return answers


@serve.deployment
class AffectIngress:
    """The AffectService RPCs; conversations live here, models in the encoder deployments."""

    def __init__(self, config: dict[str, Any], **encoders: Any) -> None:
        self._config = ServerConfig(**config)
        self._handles = encoders
        self._servicer: Any = None
        self._service_metrics: Any = None  # made once, before the servicer if a refusal comes first
        self._ready = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __del__(self) -> None:
        # Serve calls this when it stops the replica on purpose (scale-down, redeploy), once
        # its wait for ongoing requests is over (streams never end on their own): the open
        # streams end with UNAVAILABLE before the replica is killed, and clients reopen them.
        if self._servicer is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._servicer.draining.set)

    async def _get_servicer(self) -> Any:
        async with self._ready:
            if self._servicer is None:
                from affect import Analyzer
                from affect_server.priority import lower_this_thread
                from affect_server.remote import RemoteEncoder
                from affect_server.servicer import AffectServicer, Lane

                main = {m: h for m, h in self._handles.items() if m in MODALITIES}
                heavy = {m.removesuffix(HEAVY_SUFFIX): h for m, h in self._handles.items() if m.endswith(HEAVY_SUFFIX)}
                fronts = {m: await h.describe.remote() for m, h in main.items()}
                stand_ins: dict[str, Any] = {m: fronts.get(m) for m in MODALITIES}
                analyzer = Analyzer(**stand_ins)
                submitters = {m: RemoteEncoder(h) for m, h in main.items()}
                executor = ThreadPoolExecutor(max_workers=self._config.workers, thread_name_prefix="affect-prepare")
                heavy_lane = Lane(ThreadPoolExecutor(max_workers=1, thread_name_prefix="affect-prepare-heavy",
                                                     initializer=lower_this_thread),
                                  {m: RemoteEncoder(h) for m, h in heavy.items()}) if heavy else None
                # The message size is Serve's gRPC proxy's (RAY_SERVE_GRPC_MAX_MESSAGE_SIZE), not
                # max_message_mb: not told, so a client keeps to its own.
                self._servicer = AffectServicer(analyzer, self._config, self._metrics(), submitters, executor,
                                                heavy=heavy_lane, max_message_bytes=0)
                self._loop = asyncio.get_running_loop()
        return self._servicer

    async def Converse(self, request_stream: Any, grpc_context: Any) -> AsyncIterator[pb.ConverseResponse]:
        context = await self._checked(grpc_context)
        servicer = await self._get_servicer()
        async for response in servicer.Converse(request_stream, context):
            yield response

    async def Analyze(self, request: Any, grpc_context: Any) -> pb.AnalyzeResponse:
        context = await self._checked(grpc_context)
        return await (await self._get_servicer()).Analyze(request, context)

    async def ListModels(self, request: Any, grpc_context: Any) -> pb.ListModelsResponse:
        context = await self._checked(grpc_context)
        return await (await self._get_servicer()).ListModels(request, context)

    def _metrics(self) -> Any:
        if self._service_metrics is None:
            from affect_server.ray_metrics import RayServiceMetrics

            self._service_metrics = RayServiceMetrics()
        return self._service_metrics

    async def _checked(self, grpc_context: Any) -> _RayContext:
        """The call's context, once its bearer token (when one is configured) is right; a
        refusal is counted as the in-process server counts it (``affect_server.auth``)."""
        context = _RayContext(grpc_context)
        if self._config.token:
            reason = token_refusal(grpc_context.invocation_metadata(), self._config.token)
            if reason is not None:
                # counted without building the servicer: a caller without the token sets nothing in motion
                self._metrics().refused.labels(grpc.StatusCode.UNAUTHENTICATED.name, reason).inc()
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
        return context


def build_app(config: ServerConfig, settings: RaySettings | None = None) -> Application:
    """The application graph: the ingress bound to one deployment per configured encoder."""
    if config.tls_cert or config.tls_key:
        raise ValueError("Ray Serve's gRPC proxy has no TLS: end TLS in front of it (a load balancer) and leave "
                         "tls_cert and tls_key unset")
    for warning in config.check():  # the same settings checks as `affect serve` (also for `serve deploy`)
        log.warning("%s", warning)
    settings = settings or RaySettings()
    choices = config.analyzer_choices()
    encoders = {}
    for modality in MODALITIES:
        if choices[modality] is None:
            continue
        scale: DeploymentScale = getattr(settings, modality)
        # @serve.deployment made each class a Deployment, whose options() mypy does not see
        encoders[modality] = EncoderDeployment.options(  # type: ignore[attr-defined]
            name=f"{modality}-encoder", **scale.options()).bind(
            modality, choices[modality], config.batch_max_size, config.batch_max_wait_ms / 1000, settings.model_threads,
            config.runtime, config.encoder_options().get(modality, {}))
        if settings.heavy is not None and modality in HEAVY_MODALITIES:
            # sent at once (no wait), at most as many as the server lets in flight
            encoders[modality + HEAVY_SUFFIX] = EncoderDeployment.options(  # type: ignore[attr-defined]
                name=f"{modality}-encoder-heavy", **settings.heavy.options()).bind(
                modality, choices[modality], config.max_heavy_turns, 0.0, settings.model_threads, config.runtime,
                config.encoder_options().get(modality, {}), lane="heavy")
    if not encoders:
        raise ValueError("at least one of text_model, speech_model, face_model must not be 'none'")
    config_dict = {k: v for k, v in asdict(config).items() if k not in ("host", "port", "metrics_port", "tls_cert", "tls_key")}
    return AffectIngress.options(  # type: ignore[attr-defined]
        name="AffectIngress", **settings.ingress.options()).bind(config_dict, **encoders)


def app_builder(args: dict[str, Any]) -> Application:
    """For ``serve run`` / ``serve deploy``: ``args`` holds ``server`` (ServerConfig fields) and
    ``ray`` (RaySettings), both optional."""
    server = {k: v for k, v in (args.get("server") or {}).items()}
    return build_app(ServerConfig(**server), RaySettings.from_dict(args.get("ray") or {}))

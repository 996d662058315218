"""Server settings: one dataclass, filled from flags, then environment variables, then defaults
(``affect_server.settings``: the rule that names a setting's flag and variable)."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Any


from affect.limits import MAX_TEXT_CHARS
from affect.option_rules import FACE_DETECTORS, context_weight_problem
from affect.results import MODALITIES
from affect_server.limits import CONTENTION_WINDOW_S
from affect_server.settings import Settings
from affect_server.settings import opt as _opt

# HTTP/2's initial flow-control window of a stream, which gRPC keeps while the server does not
# read it (BDP probing, which would grow it, is off: app.start_server).
HTTP2_WINDOW_BYTES = 65_535
RUNTIMES = ("torch", "onnx", "onnx-int8", "auto")  # as affect.onnx.RUNTIMES, which imports torch: not at start-up


@dataclass(frozen=True)
class ServerConfig(Settings):
    """Every setting of ``affect serve``: the help of each is its ``--flag``'s in ``affect serve --help``."""

    host: str = _opt("127.0.0.1", "the address to listen on (0.0.0.0 or :: for every interface)")
    port: int = _opt(50051, "the gRPC port (0: any free port; see --ready-file)")
    metrics_port: int = _opt(0, "the Prometheus /metrics port (0: no metrics endpoint)")
    workers: int = _opt(2, "threads that run model work, off the event loop")
    model_threads: int = _opt(0, "threads each model call may use (torch, OpenCV, CTranslate2); 0: cores // workers")
    max_conversations: int = _opt(1000, "open conversations; more are refused with RESOURCE_EXHAUSTED")
    # One client cannot hold every slot, and what gRPC buffers of partly sent turns is bounded per
    # client by this times max_message_mb (all told, by max_conversations times it).
    max_conversations_per_peer: int = _opt(256, "open conversations from one client address (IPv6: one /64); a "
                                                "backend that carries many conversations from one address raises it")
    max_turns_per_second: float = _opt(10.0, "turns per second of one conversation (a token bucket, burst of 2 s); "
                                                 "its speaker resets have a bucket of their own at this rate")
    # gRPC reads a request whole before the server sees it, and each stream waiting for its next
    # request may be sent a partial one of up to this size: README, "Running it in production".
    max_message_mb: float = _opt(16.0, "one request's size in MB; larger ones are refused with RESOURCE_EXHAUSTED. "
                                       "gRPC may hold a partly received request this large for every open "
                                       "conversation and Analyze call: at worst (max_conversations + "
                                       "max_analyze_in_flight) x this, 15.9 GiB with the defaults (logged at start)")
    # Per turn, in decoded units, checked from the headers before anything is decoded
    # (INVALID_ARGUMENT naming the field: such a turn never fits).
    # At most the library's own limit, which the library and the client apply whatever the server says.
    max_text_chars: int = _opt(MAX_TEXT_CHARS, "characters of a turn's text, at most the library's limit "
                                               "(affect.limits.MAX_TEXT_CHARS, the default)")
    max_audio_seconds: float = _opt(120.0, "seconds of a turn's audio")
    max_audio_samples: int = _opt(11_520_000, "samples x channels of a turn's audio at its own rate "
                                              "(the default: 120 s of 48 kHz stereo)")
    max_image_pixels: int = _opt(16_777_216, "width x height summed over a turn's images (at most 8 images)")
    # Per process: turns admitted and not yet answered, Converse and Analyze alike
    # (RESOURCE_EXHAUSTED with a retry hint when full).
    max_in_flight_turns: int = _opt(64, "turns admitted and not yet answered, all conversations and Analyze "
                                        "calls together; more are refused with RESOURCE_EXHAUSTED and a retry hint")
    max_in_flight_mb: float = _opt(1024.0, "MB of the turns in flight: request bytes + their estimated decoded size")
    max_in_flight_share_per_peer: float = _opt(0.5, "the share of --max-in-flight-turns and --max-in-flight-mb one "
                                                    "client address (IPv6: one /64) may hold while another address "
                                                    "has turns in flight or was refused busy in the last "
                                                    f"{CONTENTION_WINDOW_S:g} s; alone, a client may use all of "
                                                    "them (1: no share)")
    max_heavy_turns: int = _opt(2, "heavy turns in flight; they run on their own worker, apart from the others")
    heavy_audio_seconds: float = _opt(20.0, "a turn with more audio than this is heavy")
    heavy_image_pixels: int = _opt(4_194_304, "a turn with more pixels than this is heavy")
    max_analyze_in_flight: int = _opt(16, "Analyze calls being read or served; bodies beyond this are not read")
    max_analyze_per_peer: int = _opt(2, "Analyze calls in flight from one client address")
    # A waiting call's body is not read: gRPC holds one flow-control window of it (app.start_server).
    max_analyze_queued_per_peer: int = _opt(16, "Analyze calls from one client address that wait, unread, for one of "
                                                "its --max-analyze-per-peer slots (first come, first served, within "
                                                "their deadlines); more are refused (0: none wait). Each holds a 64 KiB "
                                                "flow-control window of its request: 1 MiB a client address, 8 MiB in "
                                                "all with the defaults")
    max_analyze_per_second_per_peer: float = _opt(20.0, "Analyze calls per second from one client address "
                                                        "(a token bucket, burst of 1 s)")
    # A client that opens the call and sends slowly or never would otherwise hold its slot for ever.
    analyze_body_timeout_s: float = _opt(30.0, "seconds an admitted Analyze call's request may take to arrive")
    batch_max_size: int = _opt(32, "turns an encoder reads in one batch")
    batch_max_wait_ms: float = _opt(5.0, "milliseconds a batch waits for more turns")
    adaptive_batch_wait: bool = _opt(True, "stop waiting once every turn in flight is in the batch")
    # On two workers, 2 served as many turns as 1 at 32 conversations (two servers of each, taking
    # turns) and took more CPU a turn (smaller batches): benchmarks/results/load-concurrency.md,
    # load-variants.md.
    batch_concurrency: int = _opt(1, "batches of one encoder that may run at once (affect_server.batching)")
    # A stream holds its slot from the call on (which bounds what partly sent openings buffer): one
    # that never sent its opening held it for idle_timeout_s. The Python client sends it with the call.
    open_timeout_s: float = _opt(5.0, "seconds a new Converse stream may take to send its opening (OpenConversation); "
                                      "then it ends with DEADLINE_EXCEEDED")
    idle_timeout_s: float = _opt(900.0, "a conversation with no turn, or no answer read, for this long is closed")
    grace_s: float = _opt(30.0, "on SIGTERM, seconds given to the turns in flight")
    text_model: str = _opt("default", "the text weights (see `affect models`), or none to serve without text")
    speech_model: str = _opt("default", "the speech weights (see `affect models`), or none")
    face_model: str = _opt("default", "the face weights (see `affect models`), or none")
    # The detector's cost grows with its inverse squared (0.1: 59 windows for a 320x320 frame,
    # 148 ms of CPU; 0.3: one window, 4 ms; benchmarks/results/profile.md).
    face_min_fraction: float = _opt(0.1, "the smallest face looked for, as a fraction of a picture's short side "
                                         "(0.3 suits webcam frames, where the face is large: far less CPU)")
    # blazeface+mtcnn: more of the small, dim and side-lit faces found, at about 1.6x the
    # detector's CPU (see the face model card).
    face_detector: str = _opt("blazeface", "blazeface, blazeface+mtcnn (MTCNN looks again over each full search) "
                                           "or haar (OpenCV's cascades)", choices=FACE_DETECTORS)
    # affect.face.FaceEncoder's full_search_every: in between, the detector looks only around the
    # faces it follows.
    face_full_search_every: int = _opt(0, "in a conversation's successive images, one full face search in this many "
                                          "(1: every image; 0: the library's default, 10)")
    # For speech weights trained with corpus statistics (affect.speech.adaptation). Off: the same
    # turn always gets the same answer.
    speech_adapt: bool = _opt(False, "read voices against the running statistics of all the speech this server "
                                     "has heard (its microphones, lines and callers), not the training statistics")
    # affect.text.TextEncoder's context_weight, chosen on held-out dialogue (see the text model card).
    text_context_weight: float = _opt(-1.0, "how much of a text turn's answer comes from reading it with the "
                                            "conversation's past turns, 0 to 1 (-1: the text weights' own value)")
    # affect.text.prior: the presets and the pairs' rules.
    text_prior: str = _opt("default", "the emotion frequencies the traffic is expected to have: default (the "
                                      "library's, trained), a preset (trained, conversational, uniform) or pairs "
                                      "such as neutral=0.8,anger=0.08,sadness=0.05,happiness=0.05,fear=0.01,"
                                      "disgust=0.005,surprise=0.005 (an emotion left out is never read)")
    runtime: str = _opt("auto", "what runs the networks: auto, torch, onnx or onnx-int8 "
                                "(see affect.onnx; pip install 'affect[onnx]')", choices=RUNTIMES)
    token: str | None = _opt(None, "the bearer token clients must send (prefer the variable: a flag shows in `ps`)")
    tls_cert: str | None = _opt(None, "a PEM certificate (chain) file: serve TLS with --tls-key")
    tls_key: str | None = _opt(None, "the PEM private key of --tls-cert")
    # README, "Running it in production": an ingress or load balancer ends TLS and passes the
    # calls on in plaintext; this server cannot see that, so the operator says it.
    tls_terminated_upstream: bool = _opt(False, "TLS is ended in front of this server (an ingress or load balancer): "
                                                "accept a token on plaintext on a non-loopback host; only the proxy "
                                                "must reach this port")
    # An unkeyed digest of a phone number is reversed by trying numbers.
    log_id_key: str | None = _opt(None, "the key of the digests (HMAC-SHA-256) the log names conversations by "
                                        "(unset: a random key per process)")

    @property
    def max_message_bytes(self) -> int:
        """``max_message_mb`` in bytes (MiB of 2**20), as gRPC is given it and clients are told it."""
        return int(self.max_message_mb * 2**20)

    @property
    def requests_on_the_way_bytes(self) -> int:
        """The most gRPC may hold of requests partly received: one of up to ``max_message_mb``
        for each open conversation (its spare slots included) and each admitted Analyze call
        (one refused is refused before its body is read). Not counted in ``max_in_flight_mb``,
        which admission applies once a request is whole."""
        return (self.max_conversations + self.max_analyze_in_flight) * self.max_message_bytes

    @property
    def waiting_requests_bytes(self) -> int:
        """The most gRPC holds of the requests of Analyze calls waiting for a slot: a flow-control
        window each (``HTTP2_WINDOW_BYTES``), for at most ``max_analyze_queued_per_peer`` calls of
        each client address whose ``max_analyze_per_peer`` slots are taken, which at most
        ``max_analyze_in_flight // max_analyze_per_peer`` addresses can be at once."""
        addresses = self.max_analyze_in_flight // self.max_analyze_per_peer
        return addresses * self.max_analyze_queued_per_peer * HTTP2_WINDOW_BYTES

    @property
    def bare_host(self) -> str:
        """``host`` without the brackets an IPv6 literal may be given in ("[::1]" -> "::1")."""
        return self.host.strip("[]")

    def check(self) -> list[str]:
        """What is wrong with these settings, before anything is loaded; also the warnings
        (returned, to be logged). Raises ``SystemExit`` with one line for a fatal problem."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SystemExit("affect serve: give both --tls-cert and --tls-key, or neither")
        for name, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if path:
                try:
                    with open(path, "rb") as fh:
                        fh.read(1)
                except OSError as exc:
                    raise SystemExit(f"affect serve: {self.source(name)} {path}: {exc.strerror or exc}") from None
        if self.tls_cert:
            _check_tls_pair(self.tls_cert, self.tls_key)
        warnings = []
        if self.tls_terminated_upstream and self.tls_cert:
            raise SystemExit("affect serve: give --tls-terminated-upstream (TLS ended in front of this server) or "
                             "--tls-cert and --tls-key (TLS ended here), not both")
        if self.token and not self.tls_cert:
            given = self.given_by("token") or "a token"
            loopback = _is_loopback(self.host)
            if self.tls_terminated_upstream:
                if not loopback:
                    warnings.append(f"{given} on plaintext on {self.host}: accepted because TLS is ended in front of "
                                    "this server (--tls-terminated-upstream); only the proxy must reach this port")
            elif not loopback:
                raise SystemExit(f"affect serve: {given} without TLS would send the token in clear text on {self.host}; "
                                 "give --tls-cert and --tls-key, or --tls-terminated-upstream "
                                 "(AFFECT_TLS_TERMINATED_UPSTREAM) when an ingress or load balancer ends TLS in front "
                                 "of this server (plaintext with a token is otherwise allowed on loopback only)")
            else:
                warnings.append(f"{given} without TLS: the token travels in clear text (accepted because the host is "
                                "loopback)")
        for name in ("port", "metrics_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise SystemExit(f"affect serve: {self.source(name)}: must be between 0 and 65535, got {getattr(self, name)}")
        for name in ("workers", "batch_concurrency", "max_conversations", "max_conversations_per_peer", "max_in_flight_turns", "max_heavy_turns",
                     "max_analyze_in_flight", "max_analyze_per_peer", "max_text_chars", "max_audio_samples",
                     "max_image_pixels", "heavy_image_pixels", "batch_max_size"):
            if getattr(self, name) < 1:
                raise SystemExit(f"affect serve: {self.source(name)}: must be at least 1, got {getattr(self, name)}")
        if self.max_analyze_queued_per_peer < 0:
            raise SystemExit(f"affect serve: {self.source('max_analyze_queued_per_peer')}: must be 0 or more, "
                             f"got {self.max_analyze_queued_per_peer}")
        if self.max_text_chars > MAX_TEXT_CHARS:  # longer texts would still be refused, by the library and the client
            raise SystemExit(f"affect serve: {self.source('max_text_chars')}: must be at most {MAX_TEXT_CHARS} (the library's limit on a "
                             f"turn's text, which a server cannot raise), got {self.max_text_chars}")
        for name in ("max_turns_per_second", "max_message_mb", "max_audio_seconds", "max_in_flight_mb",
                     "max_analyze_per_second_per_peer", "grace_s", "heavy_audio_seconds", "idle_timeout_s",
                     "analyze_body_timeout_s", "open_timeout_s"):
            if not 0 < getattr(self, name) < math.inf:  # NaN fails too
                raise SystemExit(f"affect serve: {self.source(name)}: must be a positive number, got {getattr(self, name)}")
        if not 0 < self.max_in_flight_share_per_peer <= 1:
            raise SystemExit(f"affect serve: {self.source('max_in_flight_share_per_peer')}: must be more than 0 and at most 1, "
                             f"got {self.max_in_flight_share_per_peer}")
        if not 0 <= self.batch_max_wait_ms < math.inf:
            raise SystemExit(f"affect serve: {self.source('batch_max_wait_ms')}: must be 0 or more, got {self.batch_max_wait_ms}")
        if not 0.05 <= self.face_min_fraction <= 1:  # below 0.05 a picture costs hundreds of detector windows
            raise SystemExit(f"affect serve: {self.source('face_min_fraction')}: must be between 0.05 and 1, "
                             f"got {self.face_min_fraction}")
        self.check_choices()  # --face-detector's are the library's (affect.option_rules), --runtime's are RUNTIMES
        if self.model_threads < 0:
            raise SystemExit(f"affect serve: {self.source('model_threads')}: must be 0 (cores // workers) or more, "
                             f"got {self.model_threads}")
        if self.face_full_search_every < 0:
            raise SystemExit(f"affect serve: {self.source('face_full_search_every')}: must be 0 (the default) or more, "
                             f"got {self.face_full_search_every}")
        if self.text_context_weight != -1.0:
            if context_weight_problem(self.text_context_weight):  # the library's rule
                raise SystemExit(f"affect serve: {self.source('text_context_weight')}: must be between 0 and 1 "
                                 f"(or -1: the weights' own), got {self.text_context_weight}")
            if self.text_model.lower() == "none":
                raise SystemExit(f"affect serve: {self.source('text_context_weight')} needs a text model, and "
                                 f"{self.source('text_model')} is none")
        if self.text_prior != "default":
            self.text_prior_spec()  # SystemExit with the reason
            if self.text_model.lower() == "none":
                raise SystemExit(f"affect serve: {self.source('text_prior')} needs a text model, and "
                                 f"{self.source('text_model')} is none")
        if self.speech_adapt and self.speech_model.lower() == "none":
            raise SystemExit(f"affect serve: {self.source('speech_adapt')} needs a speech model, and "
                             f"{self.source('speech_model')} is none")
        if self.runtime not in ("torch", "auto") and importlib.util.find_spec("onnxruntime") is None:
            raise SystemExit(f"affect serve: {self.source('runtime')} {self.runtime} needs onnxruntime: "
                             "pip install 'affect[onnx]'")
        return warnings

    def threads_per_worker(self) -> int:
        """Threads one model call gets: the cores shared among the workers, so that the
        workers' concurrent batches do not fight over the same cores."""
        if self.model_threads > 0:
            return self.model_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))

    def analyzer_choices(self) -> dict[str, Any]:
        """Keyword arguments of ``affect.Analyzer`` for the configured models, each read by the rule
        ``affect analyze`` reads its flags by (``affect.registry.model_choice``, which checks the name)."""
        from affect.registry import model_choice

        return {m.value: model_choice(m.value, getattr(self, f"{m.value}_model")) for m in MODALITIES}

    def encoder_options(self) -> dict[str, dict[str, object]]:
        """``affect.Analyzer``'s ``encoder_options`` for these settings."""
        face: dict[str, object] = {"min_face_fraction": self.face_min_fraction}
        if self.face_detector != "blazeface":
            face["detector"] = self.face_detector
        if self.face_full_search_every:
            face["full_search_every"] = self.face_full_search_every
        options: dict[str, dict[str, object]] = {"face": face}
        if self.speech_adapt:
            options["speech"] = {"adapt": True}
        if self.text_context_weight != -1.0:
            options.setdefault("text", {})["context_weight"] = self.text_context_weight
        if self.text_prior != "default":
            options.setdefault("text", {})["prior"] = self.text_prior_spec()
        return options

    def text_prior_spec(self) -> object:
        """``--text-prior`` as ``affect.text.prior`` takes it (importing that module loads no torch)."""
        from affect.text.prior import parse_prior

        try:
            return parse_prior(self.text_prior)
        except ValueError as exc:
            raise SystemExit(f"affect serve: {self.source('text_prior')}: {exc}") from None


def _check_tls_pair(cert: str, key: str | None) -> None:
    """The certificate and key load as one pair (gRPC would say only that it cannot listen)."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise SystemExit(f"affect serve: --tls-cert {cert} and --tls-key {key} are not a certificate and its key "
                         f"({exc.reason or exc})") from None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


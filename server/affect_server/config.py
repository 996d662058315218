"""Server settings: one dataclass, filled from flags, then environment variables, then defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 0  # 0: no Prometheus endpoint
    workers: int = 2  # threads that run model work, off the event loop
    model_threads: int = 0  # threads each model call may use (torch, OpenCV, CTranslate2); 0: cores // workers
    max_conversations: int = 1000  # open streams; more are refused with RESOURCE_EXHAUSTED
    max_turns_per_second: float = 10.0  # per conversation, token bucket with a burst of 2 s
    max_message_mb: float = 16.0  # one request; larger ones are refused with RESOURCE_EXHAUSTED
    max_text_chars: int = 10_000
    batch_max_size: int = 32
    batch_max_wait_ms: float = 5.0
    adaptive_batch_wait: bool = True  # stop waiting once every turn in flight is in the batch
    idle_timeout_s: float = 900.0  # a stream with no turn for this long is closed
    grace_s: float = 30.0  # on SIGTERM, time given to turns in flight
    text_model: str = "default"  # a weights name (see `affect models`), or "none" to serve without text
    speech_model: str = "default"
    face_model: str = "default"
    token: str | None = None  # bearer token required from clients, if set
    tls_cert: str | None = None
    tls_key: str | None = None

    ENV_PREFIX = "AFFECT_"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            env = cls.ENV_PREFIX + f.name.upper()
            parser.add_argument(flag, default=None, help=f"(env {env}, default {f.default!r})")

    @classmethod
    def from_args(cls, args: argparse.Namespace | None = None, env: dict[str, str] | None = None) -> "ServerConfig":
        """Flags win over ``AFFECT_*`` environment variables, which win over defaults."""
        env = dict(os.environ if env is None else env)
        values = {}
        for f in fields(cls):
            raw = getattr(args, f.name, None) if args is not None else None
            if raw is None:
                raw = env.get(cls.ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = type(f.default) if f.default is not None else str
            try:
                values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError:
                raise SystemExit(f"affect serve: {f.name} must be a {kind.__name__}, got {raw!r}") from None
        config = cls(**values)
        if bool(config.tls_cert) != bool(config.tls_key):
            raise SystemExit("affect serve: give both --tls-cert and --tls-key, or neither")
        return config

    def threads_per_worker(self) -> int:
        """Threads one model call gets: the cores shared among the workers, so that the
        workers' concurrent batches do not fight over the same cores."""
        if self.model_threads > 0:
            return self.model_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))

    def analyzer_choices(self) -> dict[str, object]:
        """Keyword arguments of ``affect.Analyzer`` for the configured models."""

        def choice(name: str) -> object:
            return None if name.lower() == "none" else (True if name.lower() == "default" else name)

        return {"text": choice(self.text_model), "speech": choice(self.speech_model), "face": choice(self.face_model)}


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)

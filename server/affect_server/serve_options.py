"""The options of the ``affect serve`` process that are not the service's settings
(``ServerConfig``): its log, its ready file and Ray. Read by the same rule, a flag or its
``AFFECT_*`` variable (``affect_server.settings``), before anything heavy is imported."""

from __future__ import annotations

from dataclasses import dataclass

from affect_server.logs import LOG_FORMATS, LOG_LEVELS
from affect_server.native_log import INTERVAL_S, LINES_PER_INTERVAL, SWITCH
from affect_server.settings import Settings, opt

RAY_OPTIONS = ("ray", "ray_address", "ray_config", "ray_http_port")  # the help's "Ray Serve" group


@dataclass(frozen=True)
class ServeOptions(Settings):
    """``affect serve``'s process options: the help of each is its ``--flag``'s."""

    ready_file: str | None = opt(None, "write the bound port here once serving (for scripts)")
    log_level: str = opt("info", "the lowest level logged (no media or text is ever logged)", choices=LOG_LEVELS)
    log_format: str = opt("text", "text, or json: one JSON object a line (time, level, logger, message) for a log "
                                  "pipeline. Either way (without --ray), what native libraries (gRPC, libjpeg, "
                                  "libpng) write to stderr is logged as records of affect.native, at most "
                                  f"{LINES_PER_INTERVAL} lines in {INTERVAL_S:g} s ({SWITCH}=raw leaves it raw)",
                          choices=LOG_FORMATS)
    ray: bool = opt(False, "deploy on Ray Serve instead of one process")
    ray_address: str | None = opt(None, "an existing Ray cluster ('auto' or ray://host:10001); unset: start one here")
    ray_config: str | None = opt(None, "JSON: replicas, autoscaling and CPUs per deployment")
    ray_http_port: int = opt(8000, "Serve's HTTP proxy port (unused by affect)")

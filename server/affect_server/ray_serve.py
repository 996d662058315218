"""``affect serve --ray``: run the application on Ray Serve until SIGTERM, then take it down."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from typing import TYPE_CHECKING, Any

from affect_server.config import ServerConfig
from affect_server.logs import announce

if TYPE_CHECKING:
    from affect_server.ray_app import RaySettings

log = logging.getLogger("affect.server.ray")
APP_NAME = "affect"


def start_on_ray(config: ServerConfig, settings: RaySettings | None = None, *, address: str | None = None,
                 http_port: int = 8000, num_cpus: int | None = None, app_name: str = APP_NAME,
                 before_ray_starts: Callable[[], None] | None = None) -> None:
    """Connect to (``address``) or start a Ray cluster, start Serve's gRPC proxy on
    ``config.port`` and deploy the application. Returns once every replica is up.
    ``before_ray_starts`` is called once the libraries are imported and the models' names
    checked, just before Ray starts (``affect serve`` ends its stop-at-once signal handlers there)."""
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions, gRPCOptions

    from affect_server.app import configured_models_and_licences
    from affect_server.ray_app import GRPC_SERVICER_FUNCTION, build_app

    models = configured_models_and_licences(config)  # a weights name no family knows: refused before Ray starts
    if before_ray_starts is not None:
        before_ray_starts()
    if not ray.is_initialized():
        # Raw turns (voices, faces, text) pass through Ray's object store; spilled to disk under
        # memory pressure, they would be written in Ray's temp folder. A cluster started here
        # never spills; one started apart needs `ray start --system-config` (docs/deploy-ray.md).
        system = {"automatic_object_spilling_enabled": False} if address is None else None
        # --metrics-port: this cluster's metrics agent exports Ray's, Serve's and the service's own
        # metrics there (affect_server.ray_metrics); a cluster started apart sets its own
        # (`ray start --metrics-export-port`).
        metrics: dict[str, Any] = ({"_metrics_export_port": config.metrics_port}
                                   if address is None and config.metrics_port else {})
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _system_config=system, **metrics)
    serve.start(
        http_options=HTTPOptions(host=config.host, port=http_port),
        grpc_options=gRPCOptions(port=config.port, grpc_servicer_functions=[GRPC_SERVICER_FUNCTION]),
    )
    serve.run(build_app(config, settings), name=app_name, route_prefix=f"/{app_name}")
    log.info("%s", models)  # as `affect serve` logs it once its models are loaded: here every replica is up
    log.info("affect on Ray Serve: gRPC on %s:%d, application %r", config.host, config.port, app_name)


def stop_on_ray(app_name: str = APP_NAME) -> None:
    import ray
    from ray import serve

    try:
        serve.delete(app_name)
        serve.shutdown()
    finally:
        ray.shutdown()


def read_settings(path: Path, given_by: str = "--ray-config") -> "RaySettings":
    """``--ray-config``'s settings, or one line saying what is wrong with the file (before Ray
    starts), naming where the path was given (``--ray-config`` or ``AFFECT_RAY_CONFIG``)."""
    from affect_server.ray_app import RaySettings

    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"the file must hold a JSON object, got {type(raw).__name__}")
        return RaySettings.from_dict(raw)
    except OSError as exc:
        raise SystemExit(f"affect serve: {given_by} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # json.JSONDecodeError too
        raise SystemExit(f"affect serve: {given_by} {path}: {exc}") from None


def serve_on_ray(config: ServerConfig, settings_file: Path | None = None, *, address: str | None = None,
                 http_port: int = 8000, ready_file: Path | None = None,
                 before_ray_starts: Callable[[], None] | None = None, settings_given_by: str = "--ray-config") -> None:
    """Deploy, then wait for SIGTERM or SIGINT and take the application down (``before_ray_starts``:
    see ``start_on_ray``; ``settings_given_by``: see ``read_settings``)."""
    settings = read_settings(settings_file, settings_given_by) if settings_file else None
    start_on_ray(config, settings, address=address, http_port=http_port, before_ray_starts=before_ray_starts)
    if ready_file:
        ready_file.write_text(str(config.port))
    announce(f"affect: serving on Ray Serve, gRPC port {config.port}", log.name)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):  # wake up now and then so the signal handler gets to run
        pass
    stop_on_ray()

"""The ``affect`` console command: the library's commands (``affect.cli``) plus the two that
assemble the service and the client, ``affect serve`` and ``affect demo``.

They live here, not in ``affect.cli``, because the library never imports the server or the
client; this package may import both (the client only for the demo, through its public API).

    python -m affect_server.cli serve --port 0 --ready-file port.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from affect import cli as library_cli
from affect._errors import AffectError
from affect_server.logs import LOG_FORMATS


def cmd_demo(args: argparse.Namespace) -> None:
    """Start the service, send the sample conversation through the client, stop the service."""
    from affect_server.demo import run_demo

    run_demo(library_cli.sample_conversation(), as_json=args.json, local=args.local, quiet=args.quiet)


def cmd_serve(args: argparse.Namespace) -> None:
    """``affect serve``: a setting or start-up problem (a port in use, a missing certificate) is
    one line on stderr and exit status 2, as the other commands' usage errors."""
    try:
        _serve(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            raise SystemExit(library_cli.EXIT_BAD_INPUT) from None
        raise


def _serve(args: argparse.Namespace) -> None:
    from affect_server.logs import configure_logging
    from affect_server.native_log import log_native_stderr

    if not args.ray:  # Ray's processes, which serve the requests there, write their stderr into Ray's log files
        log_native_stderr()  # before the log's handler is made: it writes to the original stderr
    configure_logging(args.log_level, args.log_format)
    end_stop_at_once = _stop_at_once_until_serving()  # before the imports below: they take seconds (torch)
    import asyncio

    from affect_server.app import serve
    from affect_server.config import ServerConfig

    if args.ready_file and not args.ready_file.parent.is_dir():  # written once the models are loaded
        raise SystemExit(f"affect serve: --ready-file {args.ready_file}: its folder does not exist")
    config = ServerConfig.from_args(args)
    if args.ray:
        config.check()  # a setting refused stops it before Ray starts; build_app logs the warnings, once
        try:
            from affect_server.ray_serve import serve_on_ray
        except ImportError as exc:
            raise AffectError(f"affect serve --ray needs Ray Serve (pip install 'ray[serve]'): {exc}") from None
        serve_on_ray(config, args.ray_config, address=args.ray_address, http_port=args.ray_http_port,
                     ready_file=args.ready_file, before_ray_starts=end_stop_at_once)
        return
    asyncio.run(serve(config, ready_file=args.ready_file))


def _stop_at_once_until_serving() -> Callable[[], None]:
    """SIGTERM or SIGINT before the server serves (importing the libraries, checking the settings,
    loading the models) stops it at once: one log line and exit status 0, as after a drain. The
    models load on the event loop's thread, so the loop's own handlers, which
    ``affect_server.app.serve`` sets once serving, could not run before the load was over:
    SIGTERM's default ended the process with -15, and SIGINT waited for the load, then ended in
    a traceback. Set before the server's modules are imported, which takes seconds (torch), so
    that an orchestrator's SIGTERM in those seconds is as clean as later.

    Returns what ends it (the handlers before it set again), for ``--ray``, which ends it before
    Ray starts: from then on there are Ray's processes to take down, which stopping at once would
    leave running, and ``ray.init`` sets its own SIGTERM handler (a cluster started here takes its
    processes down on it)."""
    import logging
    import os
    import signal

    from affect_server.logs import log_from_signal_handler

    def stop(signum: int, _frame: FrameType | None) -> None:
        try:
            log_from_signal_handler(logging.getLogger("affect.server"), logging.INFO,
                                    f"{signal.Signals(signum).name} while starting: stopped before serving")
        finally:
            os._exit(0)  # not a normal exit: it would wait for a model loading in a worker thread

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def end() -> None:
        """Once: a second call would put back, over Ray's own SIGTERM handler, the handlers from before."""
        while before:
            sig, handler = before.popitem()
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python

    return end


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    """``demo`` and ``serve``, added to the library's parser (``affect.cli.build_parser``)."""
    from affect_server.config import ServerConfig
    from affect_server.native_log import INTERVAL_S, LINES_PER_INTERVAL, SWITCH

    demo = sub.add_parser("demo", parents=[common], help="serve the default models and send the sample conversation through the client")
    demo.add_argument("--json", action="store_true")
    demo.add_argument("--local", action="store_true", help="analyse in this process, without the gRPC service")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the gRPC streaming service",
                           description="Flags override AFFECT_* environment variables, which override defaults.")
    ServerConfig.add_arguments(serve)
    serve.add_argument("--ready-file", type=Path, help="write the bound port here once serving (for scripts)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                       help="the lowest level logged (default info; no media or text is ever logged)")
    serve.add_argument("--log-format", default="text", choices=LOG_FORMATS,
                       help="text (default) or json: one JSON object a line (time, level, logger, message) "
                            "for a log pipeline. Either way (without --ray), what native libraries (gRPC, libjpeg, "
                            "libpng) write to stderr is logged as records of affect.native, at most "
                            f"{LINES_PER_INTERVAL} lines in {INTERVAL_S:g} s (env {SWITCH}=raw leaves it raw)")
    ray = serve.add_argument_group("Ray Serve (see docs/deploy-ray.md)")
    ray.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of one process")
    ray.add_argument("--ray-address", help="an existing Ray cluster ('auto' or ray://host:10001); default: start one here")
    ray.add_argument("--ray-config", type=Path, help="JSON: replicas, autoscaling and CPUs per deployment")
    ray.add_argument("--ray-http-port", type=int, default=8000, help="Serve's HTTP proxy port (unused by affect)")
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    return library_cli.build_parser(add_commands)


def main(argv: Sequence[str] | None = None) -> int:
    return library_cli.main(argv, parser=build_parser())


if __name__ == "__main__":
    raise SystemExit(main())

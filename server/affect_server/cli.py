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
    from affect_server.config import ServerConfig
    from affect_server.logs import configure_logging
    from affect_server.native_log import log_native_stderr
    from affect_server.serve_options import ServeOptions

    options = ServeOptions.from_args(args)  # a mistake in either is refused before the imports below
    config = ServerConfig.from_args(args)
    if not options.ray:  # Ray's processes, which serve the requests there, write their stderr into Ray's log files
        log_native_stderr()  # before the log's handler is made: it writes to the original stderr
    configure_logging(options.log_level, options.log_format)
    _warn_of_unread_variables()
    end_stop_at_once = _stop_at_once_until_serving()  # before the imports below: they take seconds (torch)
    ready_file = Path(options.ready_file) if options.ready_file else None
    if ready_file and not ready_file.parent.is_dir():  # written once the models are loaded
        raise SystemExit(f"affect serve: {options.source('ready_file')} {ready_file}: its folder does not exist")
    config.check()  # a setting refused stops it before the imports; serve (or build_app on Ray) logs the warnings
    import asyncio

    from affect_server.app import serve

    if options.ray:
        try:
            from affect_server.ray_serve import serve_on_ray
        except ImportError as exc:
            raise AffectError(f"affect serve --ray needs Ray Serve (pip install 'ray[serve]'): {exc}") from None
        serve_on_ray(config, Path(options.ray_config) if options.ray_config else None, address=options.ray_address,
                     http_port=options.ray_http_port, ready_file=ready_file, before_ray_starts=end_stop_at_once,
                     settings_given_by=options.source("ray_config"))
        return
    asyncio.run(serve(config, ready_file=ready_file))


def _warn_of_unread_variables() -> None:
    """A warning, once, for each ``AFFECT_*`` variable that nothing reads: a misspelt one would
    otherwise leave its setting at its default, unseen."""
    import logging
    import os

    from affect_server.config import ServerConfig
    from affect_server.serve_options import ServeOptions
    from affect_server.settings import OTHER_VARIABLES, unread_variables

    known = {*ServerConfig.environment_variables().values(), *ServeOptions.environment_variables().values(),
             *OTHER_VARIABLES}
    for warning in unread_variables(os.environ, known):
        logging.getLogger("affect.server").warning(warning)


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
    from affect_server.serve_options import RAY_OPTIONS, ServeOptions

    demo = sub.add_parser("demo", parents=[common], help="serve the default models and send the sample conversation through the client")
    demo.add_argument("--json", action="store_true")
    demo.add_argument("--local", action="store_true", help="analyse in this process, without the gRPC service")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the gRPC streaming service",
                           description="Every flag has an environment variable: AFFECT_ and the flag's name in "
                                       "capitals, - as _ (--log-format: AFFECT_LOG_FORMAT). Flags override them, "
                                       "which override defaults; an AFFECT_* variable nothing reads is warned of.")
    ServerConfig.add_arguments(serve)
    ServeOptions.add_arguments(serve, only=[name for name in ServeOptions.environment_variables()
                                            if name not in RAY_OPTIONS])
    ServeOptions.add_arguments(serve.add_argument_group("Ray Serve (see docs/deploy-ray.md)"), only=RAY_OPTIONS)
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    return library_cli.build_parser(add_commands)


def main(argv: Sequence[str] | None = None) -> int:
    return library_cli.main(argv, parser=build_parser())


if __name__ == "__main__":
    raise SystemExit(main())

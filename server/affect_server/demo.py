"""``affect demo``: the whole path a chatbot takes, on the sample conversation.

Starts ``affect serve`` in its own process on a free loopback port, opens one conversation with
the Python client, sends each turn, prints each answer, and stops the server with SIGTERM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from affect._errors import AffectError
from affect._format import TurnRow, turn_table

_R = TypeVar("_R", bound=TurnRow)  # the library's TurnResult, or the client's

START_TIMEOUT_S = 180


def run_demo(turns: list[dict], *, as_json: bool = False, local: bool = False, quiet: bool = False) -> None:
    from affect._progress import Status, wants_progress

    if local:
        from affect import Turn
        from affect.cli import load_analyzer

        in_process = load_analyzer({"text"}, quiet=quiet).conversation()  # the sample's turns are text
        read = [in_process.analyze(Turn(text=t["text"], speaker=t.get("speaker"))) for t in turns]
        _print(read, turns, as_json, lambda r: r.to_dict())
        return
    try:
        from affect_client import AffectClient
    except ImportError:
        raise AffectError("the demo talks to the service through affect-client: pip install clients/python") from None

    from affect_server.launch import ServeProcess

    server = ServeProcess("--host", "127.0.0.1", "--log-level", "warning", stdout=subprocess.DEVNULL,
                          env={"PYTHONUNBUFFERED": "1"})
    try:
        with Status("starting the server (it loads the models)", wants_progress(quiet)):
            port = server.wait_ready(START_TIMEOUT_S)
        print(f"affect demo: server started on 127.0.0.1:{port} (pid {server.proc.pid}); "
              f"sending {len(turns)} turns over one gRPC stream\n", file=sys.stderr)
        with AffectClient(server.target) as client, client.conversation() as conversation:
            results = [conversation.send(t["text"], speaker=t.get("speaker"), turn_id=str(i)) for i, t in enumerate(turns)]
        _print(results, turns, as_json, lambda r: r.to_dict())
    finally:
        code = server.stop()
        print(f"\naffect demo: server stopped (exit code {code})", file=sys.stderr)


def _print(results: Sequence[_R], turns: list[dict], as_json: bool, to_dict: Callable[[_R], dict[str, Any]]) -> None:
    if as_json:
        print(json.dumps([to_dict(r) for r in results], indent=2))
    else:
        print(turn_table(results, [t["text"] for t in turns]))

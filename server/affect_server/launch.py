"""``affect serve`` in its own process on loopback: the one launcher that ``affect demo``, the
benchmarks and the tests use (start, wait for the bound port, stop with SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from affect._errors import AffectError


class ServerStartError(AffectError):
    """The server exited, or was not ready in time, before it served."""


def free_port() -> int:
    """A loopback port free at the time of asking (for the settings that cannot take port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``python -m affect_server.cli serve --port 0 --ready-file ... *args``, started at once.

    ``stdout`` / ``stderr`` as ``subprocess.Popen`` takes them (default: inherited). The port
    comes from the ready file the server writes once it serves; ``--port`` in ``args`` wins
    over the default 0 (Ray Serve needs a fixed one)."""

    def __init__(self, *args: str, stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.ready_file = Path(self._tmp.name) / "port"
        port = [] if "--port" in args else ["--port", "0"]
        self.proc = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "serve", *port,
                                      "--ready-file", str(self.ready_file), *args],
                                     stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})})
        self.port: int | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 300, *, poll: Callable[[], None] | None = None) -> int:
        """The bound port, once the server serves; ``ServerStartError`` if it exits first or
        takes longer than ``timeout_s`` (then it is stopped)."""
        deadline = time.monotonic() + timeout_s
        while not (self.ready_file.is_file() and self.ready_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise ServerStartError(f"the server exited with code {self.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"the server was not ready within {timeout_s:g} s")
            if poll is not None:
                poll()
            time.sleep(0.2)
        self.port = int(self.ready_file.read_text())
        return self.port

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM (the server drains), then SIGKILL after ``timeout_s``; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()
        return self.proc.returncode

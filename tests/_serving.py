"""A real affect server on loopback, run in a background thread for tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from affect_server.app import RunningServer, start_server
from affect_server.config import ServerConfig


class ServerThread:
    def __init__(self, analyzer, **settings) -> None:
        self.config = replace(ServerConfig(port=0), **settings)
        self.analyzer = analyzer
        self.loop = asyncio.new_event_loop()
        self.running: RunningServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        self.running = self.call(start_server(self.config, self.analyzer))
        return self

    def __exit__(self, *exc) -> None:
        """Drain and stop; a second call (a test's ``finally`` after it stopped the server) does nothing."""
        if self.running is None or not self.loop.is_running():
            return
        self.call(self.running.drain_and_stop(1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    def call(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def open_conversations(self) -> int:
        async def count():
            return len(self.running.servicer.conversations)

        return self.call(count())


class ServerProcess:
    """``affect serve`` in its own process on a free loopback port (``affect_server.launch``), so
    that its memory can be measured apart from the test's; its log goes to a file the test can read."""

    def __init__(self, *args: str, startup_s: float = 300) -> None:
        import subprocess
        import tempfile
        from pathlib import Path

        from affect_server.launch import ServeProcess, ServerStartError

        self._tmp = tempfile.TemporaryDirectory()
        self.log_path = Path(self._tmp.name) / "server.log"
        self._log = self.log_path.open("wb")
        self._server = ServeProcess(*args, stdout=self._log, stderr=subprocess.STDOUT)
        self.proc = self._server.proc
        try:
            self._server.wait_ready(startup_s)
        except ServerStartError as exc:
            self.stop()
            raise RuntimeError(f"the server did not start ({exc}):\n{self.log()}") from None
        self.target = self._server.target

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _status_mb(self, key: str) -> float:
        from pathlib import Path

        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    def rss_mb(self) -> float:
        return self._status_mb("VmRSS:")

    def peak_rss_mb(self) -> float:
        """The peak since the last ``reset_peak`` (Linux: VmHWM, reset through clear_refs)."""
        return self._status_mb("VmHWM:")

    def reset_peak(self) -> None:
        from pathlib import Path

        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def stop(self, timeout: float = 60) -> int | None:
        code = self._server.stop(timeout)
        self._log.close()
        return code


@contextlib.contextmanager
def server_starting_later(analyzer: Any, port: int, after_s: float, **settings: Any) -> Iterator[None]:
    """A ``ServerThread`` on ``port`` (with ``settings``: TLS, ...) that starts listening ``after_s``
    seconds into the block (a client's retries meet a server that is not up yet), stopped when the
    block ends."""
    started: list[ServerThread] = []
    timer = threading.Timer(after_s, lambda: started.append(ServerThread(analyzer, port=port, **settings).__enter__()))
    timer.start()
    try:
        yield
    finally:
        timer.join()
        for server in started:
            server.__exit__(None, None, None)

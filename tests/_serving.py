"""A real affect server on loopback, run in a background thread for tests."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

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

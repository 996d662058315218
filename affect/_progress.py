"""A one-line spinner on the terminal while something slow happens (loading models).

It writes to standard error only when that is a terminal and the user did not ask for quiet,
so piped output and logs stay clean. The line is erased when the work is done.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_FRAMES = "|/-\\"
_INTERVAL_S = 0.1


def wants_progress(quiet: bool, stream: TextIO | None = None) -> bool:
    """Progress is shown on a terminal unless ``--quiet``."""
    stream = stream or sys.stderr
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


class Status:
    """``with Status("loading models", enabled) as status: ...; status.update("loading the face model")``.

    Disabled, it does nothing at all (no thread)."""

    def __init__(self, message: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.message = message
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the spinner's thread and update() draw the one line
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._frame = 0

    def update(self, message: str) -> None:
        """Show ``message`` now (each message is seen once however soon the next comes), then spin on it."""
        self.message = message
        self._draw()

    def __enter__(self) -> "Status":
        if self.enabled:
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._spin, daemon=True, name="affect-progress")
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            with self._lock:
                self._thread = None  # update() draws no more
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _spin(self) -> None:
        while not self._stop.wait(_INTERVAL_S):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            if self._thread is None:
                return
            elapsed = time.monotonic() - self._started
            self.stream.write(f"\r\033[K{_FRAMES[self._frame % len(_FRAMES)]} {self.message} ({elapsed:.0f} s)")
            self.stream.flush()
            self._frame += 1

"""What native libraries write to standard error, as the server's own log records, throttled.

gRPC core (``Compression algorithm 'gzip' is disabled.`` for each compressed request the server
refuses), libjpeg (``Corrupt JPEG data: ...``) and libpng write plain lines straight to file
descriptor 2, past Python's logging: among ``--log-format json``'s objects they were lines a log
pipeline could not parse, and any client could make the server write one a request. Here fd 2
becomes a pipe that a daemon thread reads: each line is a WARNING record of ``affect.native``
through the log's own handlers (gRPC's ``E1207 20:47:56.535343 8587 call.cc:358]`` prefix
dropped), at most ``LINES_PER_INTERVAL`` of them in ``INTERVAL_S`` (a token bucket), and one
record says how many were suppressed. Python's own writes (``sys.stderr``, so the log's handler,
and faulthandler's report of a crash) go to a copy of the original fd 2, which fd 2 is again at exit.

The lines hold no request content: gRPC core's and libjpeg's are fixed texts with numbers; a
libpng warning names a PNG chunk by its 4-byte type, copied from the file. Each line is cut at
``MAX_LINE_CHARS`` characters anyway (its control characters replaced), and a line still
unfinished after ``MAX_PARTIAL_BYTES`` is logged cut there, the rest of it dropped.

The pipe holds 1 MiB where the system allows (64 KiB otherwise) and its writing end does not
block: a native writer never waits for the reader (which may need the GIL that writer holds);
should the reader fall that far behind, the lines that do not fit are lost, as the bucket would
have suppressed them. What a native library writes just before it aborts the process may be lost
with it; the Python stacks faulthandler writes on such a crash reach the original stderr.

``AFFECT_NATIVE_STDERR=raw`` leaves standard error alone, its lines raw and unthrottled (for
``GRPC_TRACE``'s debugging output, say); ``log`` (or unset) is the default.
"""

from __future__ import annotations

import atexit
import faulthandler
import logging
import os
import re
import select
import sys
import threading
import time
from collections.abc import Callable, Mapping

from affect_server.limits import TokenBucket

NATIVE_LOGGER = "affect.native"
SWITCH = "AFFECT_NATIVE_STDERR"
LINES_PER_INTERVAL = 10
INTERVAL_S = 60.0
MAX_LINE_CHARS = 300
MAX_PARTIAL_BYTES = 4096
PIPE_BYTES = 2**20
READ_BYTES = 2**16
# glog's and absl's prefix, as gRPC core writes it: severity, date, time, thread, file:line.
NATIVE_PREFIX = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[^\s\]]+:\d+\]\s*")


def native_text(raw: bytes) -> str:
    """One line as logged: decoded, its native prefix dropped, at most ``MAX_LINE_CHARS``
    characters, control characters (an escape sequence, a carriage return) as U+FFFD."""
    text = NATIVE_PREFIX.sub("", raw.decode("utf-8", "replace").strip(), count=1)
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS - 1] + "…"
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


class NativeLines:
    """Reads the lines written into ``fd`` (a pipe's reading end) in a daemon thread, until every
    writing end is closed, and logs each (``native_text``), at most ``lines`` in ``interval_s``;
    once lines were suppressed, one record ``interval_s`` later (or at the end) says how many."""

    def __init__(self, fd: int, *, lines: int = LINES_PER_INTERVAL, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fd, self._lines, self._interval_s, self._clock = fd, lines, interval_s, clock
        self._bucket = TokenBucket(lines / interval_s, lines, clock)
        self._suppressed, self._since = 0, 0.0
        self._log = logging.getLogger(NATIVE_LOGGER)
        self._thread = threading.Thread(target=self._run, name="affect-native-stderr", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        """Whether the reader ended (its input closed) within ``timeout_s``."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        partial, cut = b"", False  # cut: the line in progress was logged in part, its rest is dropped
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while True:
            if not poller.poll(self._until_report_ms()):
                self._report()
                continue
            try:
                chunk = os.read(self._fd, READ_BYTES)
            except OSError:
                chunk = b""
            if not chunk:
                break
            *lines, partial = (partial + chunk).split(b"\n")
            for line in lines:
                if not cut:
                    self._line(line)
                cut = False
            if len(partial) > MAX_PARTIAL_BYTES:
                if not cut:
                    self._line(partial)
                partial, cut = b"", True
        if partial and not cut:
            self._line(partial)
        if self._suppressed:
            self._report()
        os.close(self._fd)

    def _line(self, raw: bytes) -> None:
        text = native_text(raw)
        if not text:
            return
        if self._bucket.take():
            self._log.warning("%s", text)
            return
        if not self._suppressed:
            self._since = self._clock()
        self._suppressed += 1

    def _until_report_ms(self) -> int | None:
        if not self._suppressed:
            return None
        return max(0, round((self._since + self._interval_s - self._clock()) * 1000))

    def _report(self) -> None:
        self._log.warning("%d lines of native libraries' standard error suppressed in the last %.1f s "
                          "(at most %d are logged in %g s)", self._suppressed, self._clock() - self._since,
                          self._lines, self._interval_s)
        self._suppressed = 0


def log_native_stderr(env: Mapping[str, str] = os.environ) -> NativeLines | None:
    """Route fd 2 into a ``NativeLines`` reader and Python's stderr to a copy of the original
    (before the log's handlers are made: they write to ``sys.stderr``). None when
    ``AFFECT_NATIVE_STDERR=raw`` leaves it alone; a value other than ``log`` or ``raw`` is
    refused (``SystemExit``, one line). At exit fd 2 is the original again."""
    switch = env.get(SWITCH) or "log"
    if switch == "raw":
        return None
    if switch != "log":
        raise SystemExit(f"affect serve: {SWITCH} must be 'log' or 'raw', got {switch!r}")
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass
    os.set_blocking(write_end, False)
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(original, "w", buffering=1, encoding=sys.stderr.encoding, errors=sys.stderr.errors,
                      closefd=False)
    faulthandler.enable(file=sys.stderr)
    reader = NativeLines(read_end)
    reader.start()
    atexit.register(_restore, original, reader)
    return reader


def _restore(original: int, reader: NativeLines) -> None:
    """fd 2 the original again (what native code writes while the process ends reaches it raw),
    and the reader given a moment to log what the pipe still holds (its writing end is closed
    now, unless a child process holds it)."""
    os.dup2(original, 2)
    reader.join(1.0)

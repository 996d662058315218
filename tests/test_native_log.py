"""What native libraries write to standard error reaches ``affect serve``'s log as its own records,
throttled (``affect_server.native_log``): on a real server on loopback, the lines gRPC core writes
for a compressed request and libjpeg for a damaged JPEG; in a process of its own, a native writer
that holds the GIL, a crash, the end of the process; on a pipe, the throttle and the cut."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import cv2
import grpc
import numpy as np
import pytest

from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc
from affect_server.logs import JsonLineFormatter
from affect_server.native_log import (INTERVAL_S, LINES_PER_INTERVAL, MAX_LINE_CHARS, MAX_PARTIAL_BYTES,
                                      NATIVE_LOGGER, NativeLines, log_native_stderr)
from tests._serving import ServerProcess

GZIP_REFUSED = "Compression algorithm 'gzip' is disabled."
CORRUPT_JPEG = "Corrupt JPEG data: premature end of data segment"
SUPPRESSED = re.compile(r"^(\d+) lines of native libraries' standard error suppressed in the last \d+\.\d s "
                        rf"\(at most {LINES_PER_INTERVAL} are logged in {INTERVAL_S:g} s\)$")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def damaged_jpeg() -> bytes:
    """A JPEG whose scan data is overwritten with restart markers: it decodes, and libjpeg warns."""
    picture = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    data = bytearray(cv2.imencode(".jpg", picture)[1].tobytes())
    scan = data.index(b"\xff\xda")
    data[scan + 200:scan + 260] = b"\xff\xd0" * 30
    return bytes(data)


def parsed(line: str, log_format: str) -> tuple[str, str]:
    """A server log line's logger and message; the line must be one the format writes."""
    if log_format == "json":
        record = json.loads(line)
        assert set(record) == {"time", "level", "logger", "message"}, line
        return record["logger"], record["message"]
    if line.startswith("affect: serving on "):  # the one line on standard output, plain in this format
        return "stdout", line
    assert TEXT_LINE.match(line), line
    logger, _, message = line.split(" ", 3)[3].partition(": ")
    return logger, message


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_native_lines_are_log_records_and_a_flood_of_them_is_throttled(log_format: str) -> None:
    """gRPC core writes a line for each compressed request the server refuses, libjpeg one for
    each damaged JPEG it decodes: each is a WARNING record of ``affect.native`` in the log's
    format (they were plain text among the JSON objects), and 200 compressed requests give at
    most the throttle's lines and a record of how many were suppressed (they gave 200 lines)."""
    started = time.monotonic()
    server = ServerProcess("--log-format", log_format, "--speech-model", "none")
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.AffectServiceStub(channel)
            for _ in range(3):
                stub.Analyze(pb.AnalyzeRequest(turn=pb.Turn(images=[pb.Image(data=damaged_jpeg(), encoding=pb.ENCODED)])),
                             timeout=60)
        with grpc.insecure_channel(server.target, compression=grpc.Compression.Gzip) as channel:
            stub = pb_grpc.AffectServiceStub(channel)
            for _ in range(203):  # conversations' openings (gzip-compressed Analyze calls that the
                # per-client limit refuses meanwhile also log an ERROR of grpc's own, in text a traceback)
                with pytest.raises(grpc.RpcError) as refused:
                    list(stub.Converse(iter([pb.ConverseRequest(open=pb.OpenConversation())]), timeout=60))
                assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        assert server.stop() == 0
    elapsed = time.monotonic() - started

    lines = server.log().splitlines()
    records = [parsed(line, log_format) for line in lines]  # every line, the native ones too
    native = [message for logger, message in records if logger == NATIVE_LOGGER]
    summaries = [int(m.group(1)) for m in map(SUPPRESSED.match, native) if m]
    shown = [message for message in native if not SUPPRESSED.match(message)]
    assert [m for m in shown if m in (CORRUPT_JPEG, GZIP_REFUSED)][:4] == [CORRUPT_JPEG] * 3 + [GZIP_REFUSED], shown
    assert len(shown) <= LINES_PER_INTERVAL + LINES_PER_INTERVAL * elapsed / INTERVAL_S, (len(shown), elapsed)
    assert 1 <= len(summaries) <= 1 + elapsed / INTERVAL_S, native
    assert len(shown) + sum(summaries) >= 206, native  # every line counted, logged or suppressed
    if log_format == "text":
        assert any(line.endswith(f" WARNING affect.native: {GZIP_REFUSED}") for line in lines)


def run_python(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` in a Python process of its own, its standard error (the original fd 2) captured."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


ROUTED = """
    import ctypes, logging, os, sys
    from affect_server.native_log import log_native_stderr
    from affect_server.logs import configure_logging
    log_native_stderr()
    configure_logging("info", "json")
"""


def test_a_native_writer_holding_the_gil_never_waits_for_the_reader() -> None:
    """A native library that writes 4 MiB to fd 2 in one call, holding the GIL (``ctypes.PyDLL``),
    which the reader needs to read: the write ends at once with what the pipe holds (it waited
    for ever when the pipe's writing end blocked), the rest is lost, the process goes on."""
    done = run_python(ROUTED + """
    libc = ctypes.PyDLL(None)
    libc.write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    written = libc.write(2, b"native line\\n" * (4 * 2**20 // 12), 4 * 2**20)
    logging.getLogger("test").info("wrote %d bytes", written)
    """)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    (wrote,) = [int(r["message"].split()[1]) for r in records if r["logger"] == "test"]
    assert 0 < wrote < 4 * 2**20, wrote
    assert [r["message"] for r in records if r["logger"] == NATIVE_LOGGER][:LINES_PER_INTERVAL] == \
        ["native line"] * LINES_PER_INTERVAL, records


def test_python_writes_the_original_stderr_and_at_exit_native_lines_reach_it_raw() -> None:
    """``sys.stderr`` is the original, not the pipe: what Python prints there is not a native line
    (the log's handler writes there, so its records never loop back). What a native library
    writes before the exit is logged; once the process ends, fd 2 is the original again."""
    done = run_python("""
    import atexit, os
    atexit.register(lambda: os.write(2, b"late native line\\n"))  # runs after the module's own
    """ + ROUTED + """
    print("python's own line", file=sys.stderr)
    os.write(2, b"E1207 20:47:56.535343    8587 call.cc:358] early native line\\n")
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "python's own line", lines
    assert json.loads(lines[1])["logger"] == NATIVE_LOGGER and json.loads(lines[1])["message"] == "early native line"
    assert lines[2:] == ["late native line"], lines


def test_a_crash_shows_its_python_stacks_on_the_original_stderr() -> None:
    """A segmentation fault in native code: faulthandler writes the Python stacks to the original
    stderr (fd 2 is a pipe that no one reads once the process is gone)."""
    done = run_python(ROUTED + """
    def crash_here():
        ctypes.string_at(0)
    crash_here()
    """)
    assert done.returncode == -11, (done.returncode, done.stderr)
    assert "Fatal Python error: Segmentation fault" in done.stderr, done.stderr
    assert " in crash_here\n" in done.stderr, done.stderr


def test_the_switch_leaves_stderr_alone_or_refuses_a_value_it_does_not_know() -> None:
    assert log_native_stderr({"AFFECT_NATIVE_STDERR": "raw"}) is None
    with pytest.raises(SystemExit, match=r"^affect serve: AFFECT_NATIVE_STDERR must be 'log' or 'raw', got 'off'$"):
        log_native_stderr({"AFFECT_NATIVE_STDERR": "off"})


class Records(logging.Handler):
    """The records of ``affect.native``, formatted as ``--log-format json`` writes them."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(json.loads(JsonLineFormatter().format(record))["message"])


@pytest.fixture
def native_records() -> Iterator[Records]:
    handler, logger = Records(), logging.getLogger(NATIVE_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_lines_are_cut_and_an_unfinished_one_is_logged_in_part(native_records: Records) -> None:
    """gRPC's prefix is dropped, a long line is cut at MAX_LINE_CHARS, a line without its end
    after MAX_PARTIAL_BYTES is logged cut there and the rest of it dropped, control characters
    are replaced, and an unfinished line is logged when the pipe closes."""
    read_end, write_end = os.pipe()
    reader = NativeLines(read_end)
    reader.start()
    os.write(write_end, b"W0101 00:00:00.000001 1 hpack_parser.cc:1] a prefixed line\n" + b"y" * 1000 + b"\n")
    os.write(write_end, b"z" * (MAX_PARTIAL_BYTES + 100))
    os.write(write_end, b"z" * 100 + b"\nescape \x1b[31m red\r\nunfinished")
    os.close(write_end)
    assert reader.join(10)
    assert native_records.messages == ["a prefixed line", "y" * (MAX_LINE_CHARS - 1) + "…", "z" * (MAX_LINE_CHARS - 1) + "…",
                                       "escape \ufffd[31m red", "unfinished"]


def test_a_flood_is_throttled_and_what_was_suppressed_is_said_once_an_interval(native_records: Records) -> None:
    """At most ``lines`` in ``interval_s`` (a token bucket, full at first), and one record an
    interval after the first line suppressed says how many were; later lines are logged again."""
    read_end, write_end = os.pipe()
    reader = NativeLines(read_end, lines=2, interval_s=0.5)
    reader.start()
    os.write(write_end, b"".join(b"line %d\n" % i for i in range(50)))
    deadline = time.monotonic() + 10
    while not any("suppressed" in m for m in native_records.messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert native_records.messages[:2] == ["line 0", "line 1"], native_records.messages
    assert re.fullmatch(r"4[78] lines of native libraries' standard error suppressed in the last \d\.\d s "
                        r"\(at most 2 are logged in 0.5 s\)", native_records.messages[-1]), native_records.messages
    assert len(native_records.messages) in (3, 4)  # a third line if the bucket refilled meanwhile
    os.write(write_end, b"after\n")  # the bucket refilled
    os.close(write_end)
    assert reader.join(10)
    assert native_records.messages[-1] == "after"


def test_a_record_logged_from_a_signal_handler_inside_a_write_reaches_the_stream() -> None:
    """The early stop's handler (``affect serve`` before it serves) logs one line and ends the
    process. Python runs a signal handler inside a buffered write that the signal interrupted, and
    the stream refused the handler's own write as reentrant ("Logging error", the record lost, the
    exception out of the handler: the server went on loading instead of stopping, one run in
    three). ``log_from_signal_handler`` writes past the stream's buffer. The handler is run here
    where the signal runs it: inside the stream's write, on its own descriptor."""
    import io

    from affect_server.logs import TextFormatter, log_from_signal_handler

    read_end, write_end = os.pipe()
    logger = logging.getLogger("affect.test-signal-write")
    logger.propagate, logger.level = False, logging.INFO

    class InterruptedRaw(io.FileIO):
        """A descriptor whose write is interrupted once by the handler, as a signal would."""

        interrupted = False

        def write(self, data: Any) -> int:
            if not InterruptedRaw.interrupted:
                InterruptedRaw.interrupted = True
                log_from_signal_handler(logger, logging.INFO, "SIGTERM while starting: stopped before serving")
            return super().write(data)

    stream = io.TextIOWrapper(io.BufferedWriter(InterruptedRaw(write_end, "w")), line_buffering=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    try:
        logger.info("loading the models")
    finally:
        logger.removeHandler(handler)
        stream.close()  # closes write_end: the read below meets the end
    with os.fdopen(read_end, "rb") as pipe:
        written = pipe.read().decode()
    assert "INFO affect.test-signal-write: SIGTERM while starting: stopped before serving\n" in written
    assert "INFO affect.test-signal-write: loading the models\n" in written

"""The server's log lines: plain text for a terminal, or one JSON object a line for a log
pipeline (``affect serve --log-format json``: Loki, Elasticsearch, Cloud Logging read it as is).

Either way a line holds what the code wrote and nothing of a request's content: the service
logs conversation digests, counts and error ids, never text, audio or images. An exception
attached to a record is given as its type and stack, without its message, which could quote a
turn's content (as ``AffectServicer`` logs a failed turn).
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from datetime import datetime, timezone
from types import TracebackType
from typing import Union

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What sys.exc_info() gives (logging's exc_info), as logging.Formatter.formatException takes it.
ExcInfo = Union[tuple[type[BaseException], BaseException, TracebackType | None], tuple[None, None, None]]


def type_and_stack(exc_info: ExcInfo) -> str:
    """An exception as its type and stack, without its message (which could quote a turn)."""
    kind, _, stack = exc_info
    return f"{kind.__name__ if kind else 'exception'}; stack:\n" + "".join(traceback.format_tb(stack)).rstrip("\n")


class TextFormatter(logging.Formatter):
    """The plain format, an exception given as ``type_and_stack`` (the stock one prints its message)."""

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 - logging's name
        return type_and_stack(ei)


class JsonLineFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}`` (and ``"exception"``: ``type_and_stack``) a line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = type_and_stack(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def announce(message: str, logger: str) -> None:
    """A line on standard output for whoever started the server (``affect: serving on ...``; the
    log itself goes to standard error): as written, or one JSON record as the log's lines
    (level INFO, under the caller's ``logger`` name) when the log is JSON, so that a pipeline
    reading both streams reads only JSON.
    Scripts wait for ``--ready-file``, not for this line."""
    if any(isinstance(h.formatter, JsonLineFormatter) for h in logging.getLogger().handlers):
        record = logging.LogRecord(logger, logging.INFO, __file__, 0, message, None, None)
        message = JsonLineFormatter().format(record)
    print(message, flush=True)


def log_from_signal_handler(logger: logging.Logger, level: int, message: str) -> None:
    """Log ``message`` from a signal handler that ends the process next (``os._exit``).

    A handler runs between two bytecodes of the main thread, which may be in the middle of writing
    a record to the same stream: a buffered stream refuses that reentrant write (RuntimeError), the
    record is lost and the exception escapes the handler, so the process went on instead of
    ending. Each handler's formatter formats the record here, and ``os.write`` puts it on its
    stream's descriptor, unbuffered, after what the stream already holds is flushed if it can be."""
    if not logger.isEnabledFor(level):
        return
    record = logger.makeRecord(logger.name, level, "(signal)", 0, message, (), None)
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if isinstance(handler, logging.StreamHandler) and record.levelno >= handler.level:
                stream = handler.stream
                try:
                    stream.flush()
                except (RuntimeError, OSError, ValueError):
                    pass  # the interrupted write's own buffer: written when it can be, or lost with the exit
                try:
                    os.write(stream.fileno(), (handler.format(record) + "\n").encode("utf-8", "replace"))
                except (OSError, ValueError, AttributeError):
                    pass  # no descriptor (a test's StringIO) or a closed stream: nothing more to do on the way out
        current = current.parent if current.propagate else None


def configure_logging(level: str, log_format: str = "text") -> None:
    """The root logger at ``level`` (``LOG_LEVELS``), writing to stderr as ``log_format``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)

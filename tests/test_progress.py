"""The progress line: on a terminal only, erased when done, never with --quiet."""

from __future__ import annotations

import io
import time

from affect._progress import Status, wants_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_and_erased_when_done():
    stream = Terminal()
    with Status("loading the text model", wants_progress(False, stream), stream) as status:
        time.sleep(0.35)
        status.update("analysing turn 1 of 1")
        time.sleep(0.25)
    out = stream.getvalue()
    assert "loading the text model" in out and "analysing turn 1 of 1" in out and out.endswith("\r\033[K")


def test_no_progress_when_piped_or_quiet():
    assert not wants_progress(False, io.StringIO()) and not wants_progress(True, Terminal())
    stream = io.StringIO()
    with Status("loading", wants_progress(False, stream), stream):
        time.sleep(0.25)
    assert stream.getvalue() == ""

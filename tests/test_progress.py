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


def test_the_command_line_shows_a_line_as_each_model_loads_and_when_it_is_ready():
    """The lines come from ``Analyzer``'s ``on_progress`` events (``affect.cli.load_analyzer``);
    each is drawn when it comes, so a model loaded in milliseconds (the forecaster) is seen too."""
    from affect.cli import load_analyzer

    stream = Terminal()
    with Status("loading", True, stream) as status:
        analyzer = load_analyzer({"text"}, status=status)
    lines = [line.split(" ", 1)[1].rsplit(" (", 1)[0] for line in stream.getvalue().split("\r\033[K") if line]
    loaded = [line for line in lines if line.startswith("loaded ")]
    assert loaded[0].startswith(f"loaded {analyzer.text.model_id} on {analyzer.text.runtime} in ")
    assert loaded[1].startswith(f"loaded {analyzer.forecaster.model_id} on torch in ")
    assert lines.index("loading the text model") < lines.index(loaded[0]) < lines.index("loading the forecast model") \
        < lines.index(loaded[1])

"""Option types of the benchmark commands: a comma-separated value checked when it is read, so
that a typo is one usage line before any work (it crashed after minutes of measuring)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable


def names_of(allowed: Iterable[str], *, joined_by: str | None = None) -> Callable[[str], str]:
    """A type for "a,b,c" whose items are among ``allowed`` (each item may join several with
    ``joined_by``, as "text+speech"); the value is returned as given."""
    allowed = tuple(allowed)

    def check(text: str) -> str:
        for item in text.split(","):
            parts = item.split(joined_by) if joined_by else [item]
            unknown = [p for p in parts if p not in allowed]
            if unknown or not item:
                raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(allowed)}"
                                                 + (f" (joined by {joined_by!r})" if joined_by else ""))
        return text

    return check


def positive_int(text: str) -> int:
    """A type for one whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return int(text)


def positive_number(text: str) -> float:
    """A type for one number above 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def positive_ints(text: str) -> str:
    """A type for "1,8,32": whole numbers of at least 1; the value is returned as given."""
    for item in text.split(","):
        if not item.isdigit() or int(item) < 1:
            raise argparse.ArgumentTypeError(f"{item!r} is not a whole number of at least 1")
    return text

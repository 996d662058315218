"""Plain-text tables for the terminal (no dependency, stable for docs and tests)."""

from __future__ import annotations

from collections.abc import Sequence



def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _short(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def turn_table(results: Sequence[object], texts: Sequence[str | None] | None = None) -> str:
    """One row per turn: who, what was said (shortened), emotion, sentiment, valence, arousal.

    Takes the library's ``TurnResult`` or the client's (anything with the same attributes).
    """
    show_events = any(getattr(r, "events", ()) for r in results)
    columns = ["turn", "speaker", *(["text"] if texts else []), "emotion", "p", "sentiment", "valence", "arousal",
               "modalities", *(["events"] if show_events else [])]
    rows = []
    for i, r in enumerate(results):
        fused = getattr(r, "fused", r)  # the client nests the fused reading
        rows.append([
            str(r.turn_index),
            r.speaker or "",
            *([_short(texts[i], 44)] if texts else []),
            _value(fused.emotion),
            f"{fused.confidence:.2f}",
            _value(getattr(fused, "sentiment_label", None) or fused.sentiment),
            f"{fused.valence:+.2f}",
            f"{fused.arousal:+.2f}",
            "+".join(_value(m) for m in r.present),
            *([", ".join(e.kind for e in r.events)] if show_events else []),
        ])
    return table(columns, rows)


def _value(x: object) -> str:
    return str(getattr(x, "value", x))

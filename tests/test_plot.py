"""The conversation plot: event labels of neighbouring turns must not print over each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from affect.labels import EMOTION_NAMES

pytest.importorskip("matplotlib")

from affect.plot import EVENT_LABEL_BOTTOM, conversation_figure, plot_conversation  # noqa: E402


def _turn(index: int, speaker: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    emotions = {name: (0.7 if name == "anger" else 0.05) for name in EMOTION_NAMES}
    return {"turn_index": index, "speaker": speaker, "emotion": "anger", "confidence": 0.7, "valence": -0.6,
            "arousal": 0.5, "emotions": emotions, "events": events, "state": {}}


def _event_labels(fig: Any) -> list[Any]:
    top = fig.axes[0]
    return [t for t in top.texts if t.get_color() == "#b00020"]


def test_event_labels_of_neighbouring_turns_do_not_overlap() -> None:
    # Turns 1 and 2 each raise an event about another speaker (long labels that run over the next
    # turn), turn 3 raises two at once.
    about_agent = [{"kind": "sustained_negative_shift", "speaker": "agent"}]
    records = [_turn(0, "customer", []), _turn(1, "customer", about_agent), _turn(2, "customer", about_agent),
               _turn(3, "customer", [{"kind": "sustained_negative_shift", "speaker": "customer"},
                                     {"kind": "rising_anger", "speaker": "customer"}])]
    records += [_turn(i, "customer", []) for i in range(4, 12)]
    fig = conversation_figure(records)
    try:
        labels = _event_labels(fig)
        assert len(labels) == 4
        renderer = fig.canvas.get_renderer()
        boxes = [label.get_window_extent(renderer) for label in labels]
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                assert not boxes[a].overlaps(boxes[b]), (labels[a].get_text(), labels[b].get_text())
        # The first label keeps the bottom row; a later one is lifted only as far as it must be.
        assert labels[0].xy[1] == EVENT_LABEL_BOTTOM
        assert labels[1].xy[1] > EVENT_LABEL_BOTTOM
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_far_apart_events_stay_on_the_bottom_row(tmp_path: Path) -> None:
    records = [_turn(i, "customer", [{"kind": "rising_anger", "speaker": "customer"}] if i in (0, 7) else [])
               for i in range(8)]
    fig = conversation_figure(records)
    try:
        assert [label.xy[1] for label in _event_labels(fig)] == [EVENT_LABEL_BOTTOM, EVENT_LABEL_BOTTOM]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    out = plot_conversation(records, tmp_path / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_plot() -> None:
    with pytest.raises(ValueError, match="no turns"):
        conversation_figure([])

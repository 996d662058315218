"""The rules of the library's options, in a module without torch or OpenCV.

Each rule is written once, as a function that says what is wrong with a value (or ``None``):
the library raises it where the option is given (``TextEncoder(context_weight=...)``,
``FaceEncoder(detector=...)``, ``FaceEncoder.analyze_video(fps=..., max_frames=...)``), and the
command line checks its flags by it when it parses them, before any model loads. A problem
reads after the option's name: ``context_weight must be between 0 and 1, got 2.0`` in the
library, ``argument --text-context-weight: must be between 0 and 1, got 2.0`` on the command line.
"""

from __future__ import annotations

import math
from numbers import Real

FACE_DETECTORS: tuple[str, ...] = ("blazeface", "blazeface+mtcnn", "haar")
DEFAULT_FPS = 1.0  # frames sampled a second of video
MAX_SAMPLE_FPS = 60.0
DEFAULT_MAX_FRAMES = 600  # ten minutes at 1 fps


def _number(value: object) -> float | None:
    """``value`` as a float, when it is a real number (numpy's too; not a bool)."""
    return float(value) if isinstance(value, Real) and not isinstance(value, bool) else None


def context_weight_problem(value: object) -> str | None:
    """A text encoder's ``context_weight``: how much of a turn's answer comes from reading it
    with the turns before it, 0 to 1."""
    number = _number(value)
    if number is None or not 0.0 <= number <= 1.0:  # NaN fails too
        return f"must be a number between 0 and 1, got {value!r}"
    return None


def fps_problem(value: object) -> str | None:
    """Frames sampled a second of video."""
    number = _number(value)
    if number is None or not math.isfinite(number) or not 0 < number <= MAX_SAMPLE_FPS:
        return f"must be a number of frames a second in (0, {MAX_SAMPLE_FPS:g}], got {value!r}"
    return None


def max_frames_problem(value: object) -> str | None:
    """The most frames sampled from one video."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return f"must be a whole number of at least 1, got {value!r}"
    return None


def parity_items_problem(value: object) -> str | None:
    """Items an export's parity check reads: a whole number, 1 or more, or None (``all`` on the
    command line): every test item. 0 is refused, not taken for "all" nor for "none": skipping
    the check is said by name (``--no-parity``, ``export_onnx(parity=False)``)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        return f"must be a whole number of items, 1 or more, or all, got {value!r} (to skip the check: --no-parity)"
    return None


def parity_items_value(text: str) -> int | None:
    """``--parity-items``'s text: ``all`` (None: every item) or a whole number (checked by ``parity_items_problem``)."""
    return None if text.strip().lower() == "all" else int(text)


def face_detector_problem(value: object) -> str | None:
    """A face detector's name (``FACE_DETECTORS``)."""
    if value not in FACE_DETECTORS:
        return f"unknown face detector {value!r}; known: {', '.join(FACE_DETECTORS)}"
    return None

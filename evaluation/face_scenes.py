"""Synthetic scenes for face detection: real 48x48 faces placed in larger pictures, boxes known.

Each face is upscaled to one of several sizes, rotated in the picture plane, relit (gain,
gamma and a light gradient across the face, as from a lamp at the side), blended into a
cluttered background with soft edges, and placed anywhere it fits whole. Face-free pictures
are the same backgrounds with no face. Everything is drawn from a seeded generator, so a run
is repeatable; the truth box of a face is the square the 48x48 crop was scaled to (FER-2013's
framing), centred where it was placed. ``match`` pairs a detector's faces with the placed ones
as the classifier would read them (``benchmarks.detection`` and ``recipes/face_detect`` both use it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from affect.face._detect import Detection

SIZES = (48, 72, 108, 160, 240)  # face side in pixels on a 640x480 picture (10% to 50% of the short side)
ROLLS = (-30.0, -15.0, 0.0, 15.0, 30.0)  # in-plane rotation, degrees
PICTURE = (480, 640)  # height, width


@dataclass(frozen=True)
class PlacedFace:
    """Where a face went: the centre and side of its square, its rotation, and its source index."""

    cx: float
    cy: float
    side: float
    roll: float
    source: int

    @property
    def box(self) -> tuple[float, float, float, float]:
        h = self.side / 2
        return self.cx - h, self.cy - h, self.cx + h, self.cy + h


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # gray uint8
    faces: tuple[PlacedFace, ...]
    lighting: str


def background(rng: np.random.Generator, shape: tuple[int, int] = PICTURE) -> np.ndarray:
    """A cluttered gray picture: smooth shading, blurred noise at a random scale, shapes, lines and a texture."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    img = rng.uniform(60, 190) + rng.uniform(-50, 50) * ((np.cos(angle) * xx + np.sin(angle) * yy) / max(h, w))
    scale = int(rng.choice([3, 9, 27]))
    noise = cv2.resize(rng.normal(0, 1, (h // scale + 1, w // scale + 1)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    img = img + rng.uniform(8, 30) * noise
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(4, 14))):  # rectangles, ellipses and lines: edges for a cascade to fire on
        colour = int(rng.integers(0, 256))
        kind = rng.integers(3)
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if kind == 0:
            q = (p[0] + int(rng.integers(10, 200)), p[1] + int(rng.integers(10, 200)))
            cv2.rectangle(img, p, q, colour, int(rng.choice([-1, 2, 4])))
        elif kind == 1:
            axes = (int(rng.integers(5, 80)), int(rng.integers(5, 80)))
            cv2.ellipse(img, p, axes, float(rng.uniform(0, 180)), 0, 360, colour, int(rng.choice([-1, 2, 3])))
        else:
            q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p, q, colour, int(rng.integers(1, 6)))
    if rng.random() < 0.4:  # a periodic texture over part of the picture (fabric, blinds, tiles)
        period = float(rng.uniform(6, 30))
        stripes = (np.sin(2 * np.pi * (np.cos(angle) * xx - np.sin(angle) * yy) / period) * rng.uniform(15, 45))
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        region = (slice(y0, y0 + h // 2), slice(x0, x0 + w // 2))
        img[region] = np.clip(img[region].astype(np.float32) + stripes[region], 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (3, 3), 0)


def relight(face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One of four lightings: as is, dim, bright and flat, or lit from one side."""
    f = face.astype(np.float32) / 255.0
    kind = ("as-is", "dim", "bright", "side")[int(rng.integers(4))]
    if kind == "dim":
        f = 0.45 * f ** 1.3
    elif kind == "bright":
        f = 0.35 + 0.65 * f ** 0.7
    elif kind == "side":
        ramp = np.linspace(0.35, 1.15, f.shape[1], dtype=np.float32)
        f = f * (ramp if rng.random() < 0.5 else ramp[::-1])[None, :]
    return np.clip(f * 255.0, 0, 255).astype(np.uint8), kind


def place(canvas: np.ndarray, face: np.ndarray, cx: float, cy: float, side: int, roll: float) -> None:
    """Paste ``face`` scaled to ``side`` and rotated by ``roll`` degrees (counter-clockwise) at (cx, cy), soft-edged."""
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC if side > face.shape[0] else cv2.INTER_AREA)
    m = cv2.getRotationMatrix2D((side / 2, side / 2), roll, 1.0)
    m[0, 2] += cx - side / 2
    m[1, 2] += cy - side / 2
    h, w = canvas.shape
    warped = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR)
    mask = np.zeros((side, side), np.float32)
    edge = max(1, side // 16)
    mask[edge:-edge, edge:-edge] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), edge)
    alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)
    canvas[:] = np.clip(alpha * warped + (1 - alpha) * canvas, 0, 255).astype(np.uint8)


def face_scenes(faces: Sequence[np.ndarray], seed: int = 0, faces_per_picture: int = 2) -> Iterator[Scene]:
    """Pictures holding the given faces, up to ``faces_per_picture`` each, not overlapping.

    Face ``i`` gets size ``SIZES[i % 5]`` and rotation ``ROLLS[(i // 5) % 5]``, so every
    combination appears equally often; lighting and position are random.
    """
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(faces):
        canvas = background(rng)
        h, w = canvas.shape
        placed: list[PlacedFace] = []
        lights = []
        count = int(rng.integers(1, faces_per_picture + 1))
        while len(placed) < count and i < len(faces):
            side = SIZES[i % len(SIZES)]
            roll = ROLLS[(i // len(SIZES)) % len(ROLLS)]
            reach = side * 0.71  # half-diagonal: the rotated square stays inside
            for _ in range(50):
                cx, cy = rng.uniform(reach, w - reach), rng.uniform(reach, h - reach)
                if all(abs(cx - p.cx) > (side + p.side) * 0.75 or abs(cy - p.cy) > (side + p.side) * 0.75 for p in placed):
                    break
            else:
                break  # no room left in this picture: the face goes into the next one
            lit, kind = relight(faces[i], rng)
            place(canvas, lit, cx, cy, side, roll)
            placed.append(PlacedFace(cx, cy, side, roll, i))
            lights.append(kind)
            i += 1
        yield Scene(canvas, tuple(placed), ",".join(lights))


def empty_scenes(count: int, seed: int = 1) -> Iterator[np.ndarray]:
    """Face-free pictures drawn like the backgrounds of ``face_scenes``."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield background(rng)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


MATCH_IOU = 0.5
LOOSE_IOU = 0.4  # also reported: the classifier's square framed a little off still holds the face


def crop_square(d: Detection) -> tuple[float, float, float, float]:
    """The square the classifier reads, as (x0, y0, x1, y1)."""
    if d.crop is not None:
        cx, cy, side = d.crop
    else:
        cx, cy, side = d.x + d.w / 2, d.y + d.h / 2, max(d.w, d.h)
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def match(truth: list[tuple[float, float, float, float]], dets: list[Detection],
          min_iou: float = MATCH_IOU) -> tuple[list[int | None], int]:
    """Greedy one-to-one matching by IoU >= ``min_iou``: for each truth box the detection index or None; and the unmatched count."""
    pairs = sorted(((iou(t, crop_square(d)), i, j) for i, t in enumerate(truth) for j, d in enumerate(dets)), reverse=True)
    out: list[int | None] = [None] * len(truth)
    used: set[int] = set()
    for value, i, j in pairs:
        if value < min_iou:
            break
        if out[i] is None and j not in used:
            out[i], _ = j, used.add(j)
    return out, len(dets) - len(used)


def plain_scenes(faces: Sequence[np.ndarray], side: int = 192, canvas: int = 320, grey: int = 118) -> Iterator[Scene]:
    """Each face upscaled 4x, upright, in the middle of a plain gray picture (the face benchmark's pipeline check)."""
    for i, face in enumerate(faces):
        image = np.full((canvas, canvas), grey, np.uint8)
        o = (canvas - side) // 2
        image[o : o + side, o : o + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        yield Scene(image, (PlacedFace(canvas / 2, canvas / 2, side, 0.0, i),), "as-is")


@dataclass(frozen=True)
class MovingFace:
    """The frames of one face moving in front of one background (a webcam's view), boxes known."""

    frames: tuple[np.ndarray, ...]
    faces: tuple[PlacedFace, ...]  # where the face is in each frame
    source: int


def moving_sequences(faces: Sequence[np.ndarray], frames: int = 30, seed: int = 2,
                     sides: Sequence[int] = (108, 160, 240)) -> Iterator[MovingFace]:
    """One sequence per face: the face (one lighting) drifts across a still background at up to
    a sixth of its side per frame, with a little shake, a slow change of size (leaning in or back)
    and of roll (within 10 degrees), as a caller before a webcam does between frames."""
    rng = np.random.default_rng(seed)
    for i, face in enumerate(faces):
        canvas = background(rng)
        h, w = canvas.shape
        side0 = float(sides[i % len(sides)])
        lit, _ = relight(face, rng)
        speed = rng.uniform(0, side0 / 6)
        heading = rng.uniform(0, 2 * np.pi)
        grow = rng.uniform(-0.01, 0.01)  # relative change of size per frame
        roll0, spin = rng.uniform(-10, 10), rng.uniform(-0.5, 0.5)
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        images, placed = [], []
        for t in range(frames):
            side = side0 * (1 + grow) ** t
            reach = side * 0.71
            cx, cy = cx + speed * np.cos(heading) + rng.normal(0, 1.5), cy + speed * np.sin(heading) + rng.normal(0, 1.5)
            if not reach <= cx <= w - reach:  # bounce off the edges: the face stays whole in the picture
                heading = np.pi - heading
                cx = float(np.clip(cx, reach, w - reach))
            if not reach <= cy <= h - reach:
                heading = -heading
                cy = float(np.clip(cy, reach, h - reach))
            roll = float(np.clip(roll0 + spin * t, -10, 10))
            frame = canvas.copy()
            place(frame, lit, cx, cy, int(round(side)), roll)
            images.append(frame)
            placed.append(PlacedFace(float(cx), float(cy), float(int(round(side))), roll, i))
        yield MovingFace(tuple(images), tuple(placed), i)

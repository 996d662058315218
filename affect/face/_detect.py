"""Face detection and alignment: BlazeFace (the default), BlazeFace with MTCNN's second look, or
OpenCV's Haar cascades (the fallback).

``BlazeFaceDetector`` runs MediaPipe's short-range BlazeFace over a pyramid of windows (see
``affect.face._blazeface``); its eye keypoints give the roll, and the eyes, mouth and box give
the square the classifier reads, framed as FER-2013 frames its faces (``FER_FRAMING``, affect/face/_framing.py).
With ``second_look=True`` ("blazeface+mtcnn") MTCNN (``affect.face._mtcnn``) also reads the whole
picture, and BlazeFace looks again, closely, wherever MTCNN found a face it had not: faces that
the window pyramid missed (small, dim, side-lit) are found at about 1.6x the detector's CPU
(benchmarks/results/detection.md), every face still framed from BlazeFace's keypoints.

``HaarFaceDetector`` finds each face with the frontal-face cascade; its eyes are then looked
for with the eye cascade in the upper half of the box, and when two plausible eyes are found
the face is rotated so that they are level. Its crop is the detector's box (which matches the
FER-2013 framing on average).

Either way the crop is resized to the classifier's 48x48 gray input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any, Literal, Protocol

import cv2
import cv2.data  # the Haar cascades' folder (cv2's type stubs do not name the submodule)
import numpy as np

from affect.face._blazeface import BlazeFace, Box, RawFace, Window, _iou, around, pyramid, whole_picture
from affect.face._framing import FER_FRAMING
from affect.face._mtcnn import Mtcnn
from affect.face._network import FACE_SIZE
from affect.option_rules import face_detector_problem

# The names are affect.option_rules.FACE_DETECTORS (a command line checks them unloaded); this is
# them for a type checker (tests/test_server.py keeps the two alike).
DetectorName = Literal["blazeface", "blazeface+mtcnn", "haar"]
SECOND_LOOK_IOU = 0.3  # an MTCNN box overlapping a BlazeFace box this much is the same face
# MTCNN looks for face boxes down to this share of the pyramid's smallest face (a face's box is
# smaller than its FER square), never under 20 px: chosen on training faces by
# recipes/face_detect/choose_second_look.py.
SECOND_LOOK_MIN_FACE_SHARE = 0.7

DETECT_MIN_SIDE = 160  # small images are upscaled to this for detection (faces under ~24 px are missed)
DETECT_SIDE = 200  # by default detection runs with the short side at this size (see HaarFaceDetector)
BORDER = 0.2  # replicate-padding on each side, so faces touching the border are found
MAX_ROLL_DEGREES = 30.0


@dataclass(frozen=True)
class Detection:
    """One detected face: box in image pixels, detector score in (0, 1), eye-level rotation applied."""

    x: int
    y: int
    w: int
    h: int
    score: float
    roll_degrees: float | None
    crop: tuple[float, float, float] | None = None  # centre x, centre y and side of the classifier's square, when known
    keypoints: tuple[tuple[float, float], ...] = ()  # BlazeFace's six (see affect.face._blazeface.KEYPOINT_NAMES)


class FaceDetector(Protocol):
    """What the encoder needs of a detector. ``near``: where faces are expected (a tracker's
    guess from earlier frames); a detector may look there first, and must still return every
    face it would have found when one of them is not there."""

    def detect(self, gray: np.ndarray, near: Sequence[Box] = ()) -> list[Detection]: ...



class BlazeFaceDetector:
    """Faces found by BlazeFace (short range) in the whole picture and in smaller windows.

    The model finds faces that fill at least about a quarter of what it looks at, so beside the
    whole picture it reads overlapping square windows, each level half the size of the one
    before, down to the level where faces of ``min_face_fraction`` of the picture's short side
    are found. Fewer levels (a larger fraction) are faster; 0.1 finds faces of 48 pixels in a
    640x480 frame in 42 windows. ``score`` is the model's sigmoid score.
    """

    def __init__(self, *, min_face_fraction: float = 0.1, min_score: float = 0.6, face_fraction: float = 0.25,
                 ratio: float = 2.0, overlap: float = 0.5, second_look: bool = False,
                 second_look_min_face_share: float = SECOND_LOOK_MIN_FACE_SHARE) -> None:
        if not 0 < min_face_fraction <= 1:
            raise ValueError(f"min_face_fraction must be in (0, 1], got {min_face_fraction}")
        self.model = BlazeFace("short", min_score=min_score)
        self.second_look = Mtcnn() if second_look else None
        self.second_look_min_face_share = second_look_min_face_share
        self.min_face_fraction = min_face_fraction
        self.face_fraction = face_fraction
        self.ratio, self.overlap = ratio, overlap  # the pyramid's level ratio and window overlap
        # Searches so far, by kind: "full" (the pyramid), "focused" (around the expected faces) and
        # "focused_then_full" (an expected face was not there). Windows read: ``model.windows_read``.
        self.searches = {"full": 0, "focused": 0, "focused_then_full": 0}
        self._count_lock = Lock()

    def windows(self, h: int, w: int) -> int:
        """How many windows a picture of this size costs."""
        return len(self._pyramid(h, w))

    def _pyramid(self, h: int, w: int) -> tuple[Window, ...]:
        return pyramid(h, w, self.min_face_fraction * min(h, w), face_fraction=self.face_fraction, ratio=self.ratio,
                       overlap=self.overlap)

    def detect(self, gray: np.ndarray, near: Sequence[Box] = ()) -> list[Detection]:
        """Every face in a gray uint8 image, largest first.

        With ``near`` (boxes where faces are expected), the model reads the whole picture and
        two windows around each box (``around``: 3 windows for one face instead of the pyramid's
        59 for a 320x320 frame); when a box holds no face there (the face moved away, turned,
        left), the whole pyramid runs after all, so no expected face is lost to the shortcut.
        Faces that appear elsewhere, smaller than the whole-picture window finds, wait for the
        next search without ``near`` (``FaceTracker.search_hints`` decides).
        """
        h, w = gray.shape
        full = self._pyramid(h, w)
        focused = [whole_picture(h, w), *around(h, w, near)] if near else []
        kind = "full"
        if focused and len(focused) < len(full):  # many expected faces: the pyramid costs less
            found = self.model.detect(gray, focused)
            kind = "focused" if all(any(_holds(box, f) for f in found) for box in near) else "focused_then_full"
        if kind != "focused":
            found = self.model.detect(gray, full)
            if self.second_look is not None:
                found = found + self._look_again(gray, found)
        with self._count_lock:
            self.searches[kind] += 1
        return self._detections(found, h, w)

    def _look_again(self, gray: np.ndarray, found: list[RawFace]) -> list[RawFace]:
        """BlazeFace's faces in windows around each face MTCNN found and BlazeFace had not (none
        when BlazeFace, looking closely, still sees no face there: MTCNN alone never adds one)."""
        assert self.second_look is not None
        h, w = gray.shape
        min_face = max(20.0, self.min_face_fraction * min(h, w) * self.second_look_min_face_share)
        known = np.array([(f.x0, f.y0, f.x1, f.y1) for f in found]).reshape(-1, 4)

        def new_face(box: np.ndarray) -> bool:
            return not len(known) or _iou(box, known).max() < SECOND_LOOK_IOU

        boxes = [np.array([f.x0, f.y0, f.x1, f.y1]) for f in self.second_look.detect(gray, min_face=min_face)]
        missed = np.array([box for box in boxes if new_face(box)]).reshape(-1, 4)
        if not len(missed):
            return []
        confirmed = []
        for face in self.model.detect(gray, around(h, w, [tuple(m) for m in missed])):
            box = np.array([face.x0, face.y0, face.x1, face.y1])
            if new_face(box) and _iou(box, missed).max() >= SECOND_LOOK_IOU:
                confirmed.append(face)
        return confirmed

    def _detections(self, found: list[RawFace], h: int, w: int) -> list[Detection]:
        out = []
        for f in found:
            x0, y0, x1, y1 = max(0.0, f.x0), max(0.0, f.y0), min(float(w), f.x1), min(float(h), f.y1)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            dx, dy = f.keypoints[1] - f.keypoints[0]  # the subject's right eye is on the image's left
            out.append(Detection(
                int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), score=f.score,
                roll_degrees=math.degrees(math.atan2(dy, dx)),
                crop=FER_FRAMING.crop((f.x0, f.y0, f.x1, f.y1), f.keypoints),
                keypoints=tuple((float(x), float(y)) for x, y in f.keypoints),
            ))
        out.sort(key=lambda d: d.w * d.h, reverse=True)
        return _suppress_parts(out)


def make_detector(name: str, *, min_face_size: int = 24, min_score: float | None = None,
                  detect_side: int | None = DETECT_SIDE, min_face_fraction: float = 0.1) -> FaceDetector:
    """The detector called ``name`` (one of ``affect.option_rules.FACE_DETECTORS``) with the encoder's settings."""
    score: dict[str, Any] = {} if min_score is None else {"min_score": min_score}  # else the detector's own default
    if name in ("blazeface", "blazeface+mtcnn"):
        return BlazeFaceDetector(min_face_fraction=min_face_fraction, second_look=name == "blazeface+mtcnn", **score)
    if name == "haar":
        return HaarFaceDetector(min_face_size=min_face_size, detect_side=detect_side, **score)
    raise ValueError(face_detector_problem(name) or f"no detector made for {name!r}")


def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        from affect._errors import ModelLoadError

        raise ModelLoadError(f"OpenCV Haar cascade {name} missing from {cv2.data.haarcascades}")
    return cascade


class HaarFaceDetector:
    """Frontal faces with a score, plus eye positions for alignment.

    ``score`` squashes the cascade's final-stage margin through a logistic,
    ``1 / (1 + exp(-margin / 2))``: monotone in the detector's certainty, not a calibrated
    probability. Boxes below ``min_score`` are dropped.

    ``detect_side``: the cascade runs on the image resized so that its short side is this
    many pixels, whatever its size. The cascade's window is 24 pixels, so faces smaller than
    ``24 / detect_side`` of the short side (12% at 200) are not looked for: right for a webcam
    or a video call, where the face fills much of the frame, and faster than a full-resolution
    search (1.5x on 320-pixel frames, 3x at 640x480, more on larger frames). ``None`` searches the full resolution (group
    photos, faces far from the camera).
    """

    def __init__(self, *, min_face_size: int = 24, min_neighbors: int = 4, min_score: float = 0.7,
                 detect_side: int | None = DETECT_SIDE) -> None:
        self.faces = _cascade("haarcascade_frontalface_default.xml")
        self.eyes = _cascade("haarcascade_eye.xml")
        self.min_face_size = min_face_size
        self.min_neighbors = min_neighbors
        self.min_score = min_score
        self.detect_side = detect_side
        self._lock = Lock()  # CascadeClassifier is not safe to share across threads

    def detect(self, gray: np.ndarray, near: Sequence[Box] = ()) -> list[Detection]:
        """Every face in a gray uint8 image, largest first (``near`` is not used: one search covers all)."""
        h, w = gray.shape
        scale = self.detect_side / min(h, w) if self.detect_side else max(1.0, DETECT_MIN_SIDE / min(h, w))
        interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
        work = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=interpolation) if scale != 1 else gray
        pad = int(BORDER * min(work.shape))
        work = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        min_size = max(24, int(self.min_face_size * scale))
        with self._lock:
            rects, _, weights = self.faces.detectMultiScale3(
                work, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(min_size, min_size), outputRejectLevels=True
            )
        out = []
        for (rx, ry, rw, rh), margin in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            score = 1.0 / (1.0 + math.exp(-float(margin) / 2.0))
            if score < self.min_score:
                continue
            x0, y0 = (rx - pad) / scale, (ry - pad) / scale
            x1, y1 = (rx + rw - pad) / scale, (ry + rh - pad) / scale
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            box = (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))
            out.append(Detection(*box, score=score, roll_degrees=self._roll(gray, box)))
        out.sort(key=lambda d: d.w * d.h, reverse=True)
        return _suppress_parts(out)

    def _roll(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> float | None:
        """Angle (degrees) of the line through the eyes, or None when two eyes are not found."""
        x, y, w, h = box
        upper = gray[y : y + h // 2 + h // 10, x : x + w]
        if min(upper.shape) < 12:
            return None
        with self._lock:
            eyes = self.eyes.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=6, minSize=(max(6, w // 8), max(6, w // 8)),
                                              maxSize=(w // 2, w // 2))
        boxes = np.asarray(eyes).reshape(-1, 4)
        left = [e for e in boxes if e[0] + e[2] / 2 < w / 2]
        right = [e for e in boxes if e[0] + e[2] / 2 >= w / 2]
        if not left or not right:
            return None
        lx, ly, lw, lh = max(left, key=lambda e: e[2])
        qx, qy, qw, qh = max(right, key=lambda e: e[2])
        dx = (qx + qw / 2) - (lx + lw / 2)
        dy = (qy + qh / 2) - (ly + lh / 2)
        if dx < w / 5:
            return None
        angle = math.degrees(math.atan2(dy, dx))
        return angle if abs(angle) <= MAX_ROLL_DEGREES else None


def _holds(box: Box, face: RawFace) -> bool:
    """Is ``face`` the face expected at ``box``: its centre within half the box's side of the box's, its size within 2x."""
    side = max(box[2] - box[0], box[3] - box[1], 1e-6)
    face_side = max(face.x1 - face.x0, face.y1 - face.y0)
    shift = math.hypot((face.x0 + face.x1 - box[0] - box[2]) / 2, (face.y0 + face.y1 - box[1] - box[3]) / 2)
    return shift <= side / 2 and 0.5 <= face_side / side <= 2.0


def _suppress_parts(dets: list[Detection], max_covered: float = 0.4) -> list[Detection]:
    """Drop a box (largest first) when a kept box already covers more than ``max_covered`` of it.

    The cascade sometimes fires on part of a face (an eye and the nose) next to or inside the
    whole-face box; those parts are not separate faces.
    """
    kept: list[Detection] = []
    for d in dets:
        covered = 0.0
        for k in kept:
            iw = min(d.x + d.w, k.x + k.w) - max(d.x, k.x)
            ih = min(d.y + d.h, k.y + k.h) - max(d.y, k.y)
            if iw > 0 and ih > 0:
                covered = max(covered, iw * ih / float(d.w * d.h))
        if covered <= max_covered:
            kept.append(d)
    return kept


def crop_face(gray: np.ndarray, det: Detection) -> np.ndarray:
    """The face as the classifier wants it: eyes level (when known), square, 48x48 gray uint8."""
    if det.crop is not None:
        cx, cy, side_f = det.crop
        side = max(2, int(round(side_f)))
    else:
        cx, cy = det.x + det.w / 2, det.y + det.h / 2
        side = max(det.w, det.h)
    angle = det.roll_degrees or 0.0
    # Rotate about the face centre, then shift so that the square box lands at the origin.
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[0, 2] += side / 2 - cx
    m[1, 2] += side / 2 - cy
    face = cv2.warpAffine(gray, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > FACE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=interp)

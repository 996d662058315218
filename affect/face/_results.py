"""Typed results of the face branch: one entry per detected face, per image, per video frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affect.results import ModalityResult

NO_FACE_REASON = "no face detected"


@dataclass(frozen=True)
class FaceBox:
    """A face's box in pixels of the input image: top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


@dataclass(frozen=True)
class DetectedFace:
    """One face: where it is, how sure the detector is, and its expression.

    ``aligned`` says whether the eyes were found and the face rotated to level them
    (``roll_degrees`` is the rotation applied). In successive frames (``analyze_video``, a
    conversation's images) ``track_id`` follows the same face from frame to frame (ids start
    at 1) and ``smoothed`` is its track's expression smoothed over the frames so far;
    ``result`` is always this frame's own reading.
    """

    box: FaceBox
    detection_score: float
    result: ModalityResult
    aligned: bool = False
    roll_degrees: float = 0.0
    track_id: int | None = None
    smoothed: ModalityResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.to_dict(),
            "detection_score": self.detection_score,
            "aligned": self.aligned,
            "roll_degrees": self.roll_degrees,
            **self.result.to_dict(),
            **({"track_id": self.track_id} if self.track_id is not None else {}),
            **({"smoothed": self.smoothed.to_dict()} if self.smoothed is not None else {}),
        }


@dataclass(frozen=True)
class FaceAnalysis:
    """Every face of one image, largest first. With no face, ``faces`` is empty and ``reason`` says so."""

    faces: tuple[DetectedFace, ...]
    width: int
    height: int
    reason: str | None = None

    @property
    def primary(self) -> DetectedFace | None:
        """The largest face (the one the picture is most likely about), or None."""
        return max(self.faces, key=lambda f: f.box.area) if self.faces else None

    def modality_result(self) -> ModalityResult | None:
        """One result for the whole image: the largest face's, or None (see ``reason``)."""
        primary = self.primary
        return primary.result if primary else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class VideoFrameFaces:
    """The faces of one sampled video frame, at ``time_s`` seconds (frame number ``frame_index``)."""

    time_s: float
    frame_index: int
    analysis: FaceAnalysis

    def to_dict(self) -> dict[str, Any]:
        return {"time_s": self.time_s, "frame_index": self.frame_index, **self.analysis.to_dict()}


@dataclass(frozen=True)
class FaceTrackSummary:
    """One face followed through a video: first and last time seen, frames seen, mean expression."""

    track_id: int
    first_s: float
    last_s: float
    frames: int
    result: ModalityResult

    def to_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "first_s": self.first_s, "last_s": self.last_s, "frames": self.frames,
                **self.result.to_dict()}

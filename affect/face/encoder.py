"""The face encoder: find every face in an image or video and classify its expression."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np
import torch

from affect._errors import InvalidInputError
from affect.face._blazeface import Box
from affect.face._detect import DETECT_SIDE, DetectorName, crop_face, make_detector
from affect.face._input import ChannelOrder, load_gray
from affect.face._network import CROP_SIZE, FACE_SIZE
from affect.face._results import NO_FACE_REASON, DetectedFace, FaceAnalysis, FaceBox, VideoFrameFaces
from affect.face._track import FaceTracker, SpeakerTrackers
from affect.face._video import sample_frames
from affect.face._weights_io import load_face_entry
from affect.face.weights import FaceWeights
from affect.labels import EMOTIONS, sentiment_from_emotions
from affect.limits import check_image_count
from affect.media import ImageInput, VideoInput
from affect.option_rules import DEFAULT_FPS, DEFAULT_MAX_FRAMES, face_detector_problem
from affect.results import AffectEstimate, FaceReading, Modality, ModalityResult
from affect.turn_flow import ConversationOptions

if TYPE_CHECKING:
    from affect.conversation import PreparedTurn, Turn

MAX_BATCH = 256
FULL_SEARCH_EVERY = 10  # successive frames: one full detector search in this many (see FaceTracker.search_hints)


@dataclass(frozen=True)
class FaceRequest:
    """One image for ``analyze_many``, with where its faces are expected (``near``: boxes
    ``x0, y0, x1, y1`` from a tracker, or none); see ``FaceDetector.detect``."""

    image: ImageInput
    near: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        for box in self.near:
            if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
                raise InvalidInputError(f"near: each box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box!r}",
                                        field="near")


@dataclass(frozen=True)
class FaceTurns:
    """What a conversation needs of a face encoder (``affect.turn_flow.ModalityTurns``), here or
    in another process: images are decoded to gray arrays where the turn enters. The
    conversation's state is its ``SpeakerTrackers`` (boxes, no pixels)."""

    model_id: str
    full_search_every: int = FULL_SEARCH_EVERY
    modality: ClassVar[Modality] = Modality.FACE
    batch_method: ClassVar[str] = "analyze_many"

    def new_state(self, options: ConversationOptions) -> SpeakerTrackers:
        return SpeakerTrackers()

    def check(self, turn: "Turn") -> None:
        check_image_count(len(turn.all_images()))

    def requests(self, turn: "Turn", state: SpeakerTrackers | None) -> list[FaceRequest]:
        """The turn's images as gray arrays (``check`` has passed: the conversation calls it first),
        each with where the speaker's tracked faces are expected."""
        grays = [load_gray(image, turn.channel_order, field)  # type: ignore[arg-type]  # a str, checked where it is read
                 for field, image in turn.images_by_field().items()]
        tracker = state.for_speaker(turn.speaker) if state is not None else None
        return [FaceRequest(g, tracker.search_hints(g.shape[1], g.shape[0], self.full_search_every) if tracker else ())
                for g in grays]

    def record(self, prepared: "PreparedTurn", answers: list[Any], state: SpeakerTrackers | None) -> None:
        """Every face of the turn's images, with track ids that follow them from the speaker's
        earlier images; the turn's face reading is its largest face."""
        tracker = state.for_speaker(prepared.turn.speaker) if state is not None else None
        analyses = [tracker.update(a) for a in answers] if tracker is not None else list(answers)
        prepared.faces = tuple(
            FaceReading(i, f.box.x, f.box.y, f.box.w, f.box.h, f.detection_score, f.result, f.track_id)
            for i, analysis in enumerate(analyses) for f in analysis.faces)
        faces = [face for analysis in analyses for face in analysis.faces]
        if faces:
            prepared.results[Modality.FACE] = max(faces, key=lambda f: f.box.area).result
        else:
            prepared.absent[Modality.FACE] = (analyses[0].reason or NO_FACE_REASON) if analyses else "no image"

    def forget_speaker(self, state: SpeakerTrackers | None, speaker: str, former: str) -> None:
        """The speaker's faces are tracked afresh (new track ids, a full search first)."""
        if state is not None:
            state.forget(speaker)


class FaceEncoder:
    """Faces and their expressions, fully offline.

    >>> encoder = FaceEncoder()
    >>> analysis = encoder.analyze("photo.jpg")
    >>> [(f.box, f.result.emotion) for f in analysis.faces]
    >>> encoder.encode("photo.jpg")   # one ModalityResult (largest face) or None

    ``flip_tta`` averages each face with its mirror image; ``None`` reads each face as its weights'
    figures were measured (``flip_tta`` in the weights meta: the one-network default reads one
    view, the VGG entries two).
    ``detector`` is "blazeface" (the default: MediaPipe's BlazeFace, whose eye keypoints align
    the face), "blazeface+mtcnn" (MTCNN looks again over each full search and BlazeFace looks
    closely wherever it finds a face: more small, dim and side-lit faces found, about 1.6x the
    detector's CPU) or "haar" (OpenCV's cascades, the fallback where BlazeFace cannot run).
    ``min_detection_score`` defaults to each detector's own (0.6 BlazeFace, 0.7 Haar).
    BlazeFace looks for faces down to ``min_face_fraction`` of the picture's short side (fewer
    windows, faster, when larger); Haar's ``detect_side`` trades the smallest face looked for
    against speed (see ``HaarFaceDetector``; ``None`` searches at full resolution).
    In successive frames (a video, a conversation's images) BlazeFace searches the whole
    picture once in ``full_search_every`` frames and in between looks around the faces it
    follows (falling back to a full search when one is not there); 1 searches every frame in full.
    """

    modality = Modality.FACE

    def __init__(
        self,
        *,
        weights: FaceWeights | str | None = None,
        detector: DetectorName = "blazeface",
        min_face_size: int = 24,
        min_detection_score: float | None = None,
        flip_tta: bool | None = None,
        detect_side: int | None = DETECT_SIDE,
        min_face_fraction: float = 0.1,
        full_search_every: int = FULL_SEARCH_EVERY,
    ) -> None:
        if not isinstance(full_search_every, int) or full_search_every < 1:
            raise InvalidInputError(f"full_search_every must be an integer >= 1, got {full_search_every!r}", field="full_search_every")
        if problem := face_detector_problem(detector):  # before the network loads
            raise InvalidInputError(problem, field="detector")
        self.full_search_every = full_search_every
        self.weights = FaceWeights.resolve(weights)
        self.net = load_face_entry(self.weights)
        self.model_id = self.weights.value.id
        try:
            self.detector = make_detector(detector, min_face_size=min_face_size, min_score=min_detection_score,
                                          detect_side=detect_side, min_face_fraction=min_face_fraction)
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="detector") from exc
        self.detector_name = detector
        self.flip_tta = bool(self.weights.meta.get("flip_tta", True)) if flip_tta is None else flip_tta
        self.tta_crops = tuple(self.weights.meta.get("tta_crops", (CROP_SIZE,)))  # test-time views the figures used
        self.temperature = float(self.weights.meta.get("temperature", 1.0))  # fitted by recipes/face_fer/calibrate.py
        self._lock = Lock()  # one forward pass at a time

    # -- classification of faces already cropped ------------------------------------------
    def predict_proba(self, faces: np.ndarray) -> np.ndarray:
        """Emotion probabilities ``(N, 7)`` (``affect.labels.EMOTIONS`` order) for gray uint8 faces ``(N, 48, 48)``."""
        if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE) or faces.dtype != np.uint8:
            raise InvalidInputError(f"faces must be uint8 (N, {FACE_SIZE}, {FACE_SIZE}), got {faces.dtype} {faces.shape}", field="faces")
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(faces), MAX_BATCH):
                x = torch.from_numpy(np.ascontiguousarray(faces[i : i + MAX_BATCH])).float().div_(255).unsqueeze(1)
                out.append(self.net.predict_proba(x, flip=self.flip_tta, crops=self.tta_crops).numpy())
        if not out:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        probs = np.concatenate(out)
        if self.temperature != 1.0:  # p ** (1 / T), renormalised: the argmax never changes
            probs = np.power(np.clip(probs, 1e-12, 1.0), 1.0 / self.temperature)
            probs /= probs.sum(1, keepdims=True)
        return probs

    def classify_faces(self, faces: Sequence[ImageInput], *, channel_order: ChannelOrder | None = None) -> list[ModalityResult]:
        """Many already-cropped faces (any size; resized to 48x48 gray) in one forward pass: the server's batch call."""
        crops = []
        for face in faces:
            gray = load_gray(face, channel_order)
            interp = cv2.INTER_AREA if min(gray.shape) > FACE_SIZE else cv2.INTER_LINEAR
            crops.append(cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=interp))
        if not crops:
            return []
        return [self._result(p) for p in self.predict_proba(np.stack(crops))]

    # -- images ----------------------------------------------------------------------------
    def analyze(self, image: ImageInput, *, channel_order: ChannelOrder | None = None) -> FaceAnalysis:
        """Every face of one image (encoded bytes, a file path, or a uint8 array).

        Colour arrays need ``channel_order`` ("bgr" or "rgb"). With no face, the analysis has
        no faces and ``reason == "no face detected"``.
        """
        return self._analyze_gray(load_gray(image, channel_order))

    def analyze_many(self, images: Sequence[ImageInput | FaceRequest], *,
                     channel_order: ChannelOrder | None = None) -> list[FaceAnalysis]:
        """Every face of several images, all faces classified in one forward pass: the server's batch call."""
        requests = [image if isinstance(image, FaceRequest) else FaceRequest(image) for image in images]
        grays = [load_gray(r.image, channel_order) for r in requests]
        detections = [self.detector.detect(gray, r.near) for gray, r in zip(grays, requests)]
        crops = [crop_face(gray, d) for gray, found in zip(grays, detections) for d in found]
        probs = iter(self.predict_proba(np.stack(crops)) if crops else ())
        return [self._analysis(gray, found, [next(probs) for _ in found]) for gray, found in zip(grays, detections)]

    def encode(self, image: ImageInput, *, channel_order: ChannelOrder | None = None) -> ModalityResult | None:
        """One result for the whole image (its largest face), or None when no face is found."""
        return self.analyze(image, channel_order=channel_order).modality_result()

    def analyze_video(
        self, path: VideoInput, *, fps: float = DEFAULT_FPS, max_frames: int = DEFAULT_MAX_FRAMES
    ) -> list[VideoFrameFaces]:
        """The faces of a video file sampled every ``1 / fps`` seconds (at most ``max_frames`` frames),
        at each frame's own time (variable frame rates too; each sample is the frame stamped nearest
        its time, each frame once, so a video's own rate gives every frame).
        A video read in part (``max_frames`` reached, or a file whose decoding stops before its
        announced end) warns with
        ``VideoIncompleteWarning``; only MP4/MOV, AVI, MKV/WebM, Ogg, FLV, MPEG, WMV and MJPEG
        files are opened (FFmpeg would read a playlist naming other files too). A frame over an
        image's pixel limits (announced, met by the decoder before it allocates the frame, as a
        stream that grows mid-way, or as decoded) refuses the video with ``InputTooLargeError``
        naming it; at most ``MAX_DECODED_FPS`` (240) frames are
        decoded for each second the samples may cover, and 240 more (``reason="decode_budget"``).

        Faces are followed from frame to frame: each carries a ``track_id`` and its track's
        ``smoothed`` expression; ``affect.face.summarize_tracks(frames)`` gives one entry per track.
        """
        tracker = self.new_tracker()
        frames = []
        for t, i, gray in sample_frames(path, fps, max_frames):
            near = tracker.search_hints(gray.shape[1], gray.shape[0], self.full_search_every)
            analysis = self.analyze_many([FaceRequest(gray, near)])[0]
            frames.append(VideoFrameFaces(time_s=t, frame_index=i, analysis=tracker.update(analysis)))
        return frames

    @property
    def turns(self) -> FaceTurns:
        return FaceTurns(self.model_id, self.full_search_every)

    @staticmethod
    def new_tracker() -> FaceTracker:
        """Track state for one stream of frames (a video, a conversation's images)."""
        return FaceTracker()

    def _analyze_gray(self, gray: np.ndarray) -> FaceAnalysis:
        return self.analyze_many([gray])[0]

    def _analysis(self, gray: np.ndarray, detections: Sequence[Any], probs: Sequence[np.ndarray]) -> FaceAnalysis:
        h, w = gray.shape
        if not detections:
            return FaceAnalysis(faces=(), width=w, height=h, reason=NO_FACE_REASON)
        faces = tuple(
            DetectedFace(
                box=FaceBox(d.x, d.y, d.w, d.h),
                detection_score=d.score,
                result=self._result(p),
                aligned=d.roll_degrees is not None,
                roll_degrees=float(d.roll_degrees or 0.0),
            )
            for d, p in zip(detections, probs)
        )
        return FaceAnalysis(faces=faces, width=w, height=h)

    def _result(self, probs: np.ndarray) -> ModalityResult:
        emotion = [float(p) for p in probs]
        fields = AffectEstimate.fields_from_probs(emotion, sentiment_from_emotions(emotion))
        return ModalityResult(**fields, modality=Modality.FACE, model=self.model_id)

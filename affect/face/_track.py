"""Faces followed across frames: IoU tracking with a constant-velocity guess, and smoothed expressions.

Each new frame's faces are matched to the live tracks by the overlap of their boxes with where
each track is expected (its last box moved by its recent motion), greedily, best overlap
first; a face left over whose centre is close to where a left-over track is expected (a face
partly hidden, whose box shrinks) matches it in a second pass.
A face that matches no track starts a new one with the next id; a track not seen for
``max_missed`` frames ends, and its id is never given again by this tracker. Nothing but
boxes and the smoothed emotion distribution is kept: no face pixels, no embeddings, no
identity. A face that leaves and comes back later is a new track.

Between full searches the tracker tells the detector where its faces are expected
(``search_hints``): BlazeFace then reads two windows around each instead of its whole pyramid,
and falls back to the pyramid itself when an expected face is not there. Every
``full_search_every``-th frame (and whenever the frame size changes or no face is tracked)
is a full search, which finds faces that appeared since.

Each track's expression is an exponential moving average of its faces' emotion
distributions (``smoothing`` is the weight of the newest frame), so a single odd frame moves
it only part of the way.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from affect.face._blazeface import Box
from affect.face._results import DetectedFace, FaceAnalysis, FaceTrackSummary, VideoFrameFaces
from affect.labels import EMOTION_NAMES, sentiment_from_emotions
from affect.results import AffectEstimate, ModalityResult

MAX_TRACKS = 32  # live tracks kept at once (a bound on the state, however crowded the picture)


@dataclass
class _Track:
    id: int
    box: np.ndarray  # x0, y0, x1, y1
    step: np.ndarray  # the box's last move per frame
    probs: np.ndarray  # smoothed emotion distribution
    missed: int = 0
    moved: bool = False  # has ``step`` been measured yet


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _centre_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Distance of the centres, in sides of the larger box."""
    side = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1], 1e-6)
    return float(np.hypot(*(_centre(a) - _centre(b))) / side)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def smoothed_result(probs: np.ndarray, like: ModalityResult) -> ModalityResult:
    """A face result carrying the distribution ``probs`` (model and modality from ``like``)."""
    emotion = [float(p) for p in probs]
    fields = AffectEstimate.fields_from_probs(emotion, sentiment_from_emotions(emotion))
    return ModalityResult(**fields, modality=like.modality, model=like.model)


@dataclass
class FaceTracker:
    """Stable ids for the faces of successive frames (a video, or a conversation's images)."""

    min_iou: float = 0.3
    max_missed: int = 2
    smoothing: float = 0.5
    max_centre_shift: float = 1.0  # second pass: centres this close (in box sides) match when the boxes overlap too little
    _tracks: list[_Track] = field(default_factory=list, init=False, repr=False)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)  # shared by a conversation's trackers
    _frames: int = field(default=0, init=False, repr=False)  # frames seen
    _size: tuple[int, int] = field(default=(0, 0), init=False, repr=False)  # the last frame's width and height

    def __post_init__(self) -> None:
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")

    def search_hints(self, width: int, height: int, full_search_every: int) -> tuple[Box, ...]:
        """Where the next frame's faces are expected (``x0, y0, x1, y1`` of each track seen in the
        last frame, moved by its recent step), or ``()`` when the next frame needs a full search:
        every ``full_search_every``-th frame (1: always), a new frame size, or no face tracked."""
        if full_search_every <= 1 or self._frames % full_search_every == 0 or (width, height) != self._size:
            return ()
        return tuple(tuple(float(v) for v in t.box + t.step) for t in self._tracks if t.missed == 0)  # type: ignore[misc]  # four values a box

    def update(self, analysis: FaceAnalysis) -> FaceAnalysis:
        """The same analysis with each face's ``track_id`` and ``smoothed`` reading filled in."""
        self._frames += 1
        self._size = (analysis.width, analysis.height)
        boxes = [np.array([f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h], float) for f in analysis.faces]
        pairs = sorted(((_iou(t.box + t.step, b), ti, fi) for ti, t in enumerate(self._tracks) for fi, b in enumerate(boxes)),
                       reverse=True)
        track_of: dict[int, _Track] = {}
        taken: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < self.min_iou:
                break
            if fi not in track_of and ti not in taken:
                track_of[fi] = self._tracks[ti]
                taken.add(ti)
        # Second chance for a face partly hidden (its box shrinks): its centre near where a track is expected.
        near = sorted((_centre_distance(t.box + t.step, b), ti, fi) for ti, t in enumerate(self._tracks)
                      for fi, b in enumerate(boxes) if ti not in taken and fi not in track_of)
        for distance, ti, fi in near:
            if distance > self.max_centre_shift:
                break
            if fi not in track_of and ti not in taken:
                track_of[fi] = self._tracks[ti]
                taken.add(ti)
        faces, touched = [], set()
        for fi, (face, box) in enumerate(zip(analysis.faces, boxes)):
            probs = np.array([face.result.emotions[name] for name in EMOTION_NAMES], float)
            track = track_of.get(fi)
            if track is None:
                track = _Track(next(self.ids), box, np.zeros(4), probs)
                self._tracks.append(track)
            else:
                shift = _centre(box) - _centre(track.box)  # the box's move, not its change of size
                track.step = 0.5 * track.step + 0.5 * np.tile(shift, 2) if track.moved else np.tile(shift, 2)
                track.box, track.moved = box, True
                track.probs = (1 - self.smoothing) * track.probs + self.smoothing * probs
                track.missed = 0
            touched.add(track.id)
            faces.append(replace(face, track_id=track.id, smoothed=smoothed_result(track.probs, face.result)))
        for t in self._tracks:
            if t.id not in touched:
                t.missed += 1
                t.box = t.box + t.step  # keep moving where it was going
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed][-MAX_TRACKS:]
        return replace(analysis, faces=tuple(faces))

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)


def summarize_tracks(frames: Sequence[VideoFrameFaces]) -> list[FaceTrackSummary]:
    """One entry per track of tracked video frames: when it was seen, and its mean expression."""
    by_id: dict[int, list[tuple[float, DetectedFace]]] = {}
    for frame in frames:
        for face in frame.analysis.faces:
            if face.track_id is not None:
                by_id.setdefault(face.track_id, []).append((frame.time_s, face))
    out = []
    for track_id, seen in sorted(by_id.items()):
        probs = np.mean([[f.result.emotions[name] for name in EMOTION_NAMES] for _, f in seen], axis=0)
        out.append(FaceTrackSummary(track_id=track_id, first_s=seen[0][0], last_s=seen[-1][0], frames=len(seen),
                                    result=smoothed_result(probs, seen[0][1].result)))
    return out


class SpeakerTrackers:
    """A conversation's face tracking: one ``FaceTracker`` per speaker, since each speaker's images
    come from their own camera (one tracker for all gave a caller's face and the agent's the same
    id when their turns alternated), with ids unique across them. The same person seen in two
    speakers' images is two tracks. At most ``max_speakers`` are kept, the least recent dropped."""

    def __init__(self, max_speakers: int = 8) -> None:
        self.max_speakers = max_speakers
        self._trackers: OrderedDict[str | None, FaceTracker] = OrderedDict()
        self._ids = itertools.count(1)

    def forget(self, speaker: str | None) -> None:
        """Drop the speaker's tracker: their next image starts new tracks (ids never reused)."""
        self._trackers.pop(speaker, None)

    def for_speaker(self, speaker: str | None) -> FaceTracker:
        tracker = self._trackers.pop(speaker, None) or FaceTracker(ids=self._ids)
        self._trackers[speaker] = tracker  # most recent last
        while len(self._trackers) > self.max_speakers:
            self._trackers.popitem(last=False)
        return tracker

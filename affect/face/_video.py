"""Reading a video file as gray frames sampled at a fixed rate (OpenCV's FFmpeg backend)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from affect._errors import InvalidInputError
from affect.face._input import check_size, read_header
from affect.media import VideoInput
from affect.option_rules import fps_problem, max_frames_problem

# Frames decoded for each second of video the samples may cover (``max_frames / fps``), and one
# second more: a phone's slow motion (240 a second) is read whole; a video whose frames come
# faster, or whose frame times stand still, is read only as far as that (every frame is
# decoded, sampled or not).
MAX_DECODED_FPS = 240
# Packets whose JPEG headers are read ahead of the decoder: more than FFmpeg's decoder holds
# before it gives a frame (a frame thread each, at most 16 as OpenCV sets them).
HEADER_LEAD = 32


class VideoIncompleteWarning(UserWarning):
    """Frames were sampled from part of the video only: the results cover that part.

    ``reason`` is ``"max_frames"`` (a frame was due past the ``max_frames`` allowed),
    ``"decoding_stopped"`` (the decoder stopped before the end the file announces, at frame
    ``frames_decoded`` of ``frames_announced``) or ``"decode_budget"`` (``frames_decoded``
    frames were decoded, the most for ``max_frames`` at that ``fps``: ``MAX_DECODED_FPS`` for
    each second the samples may cover, and one second more, and the frames came faster or
    their times stood still); ``frames_read`` frames were sampled, up to
    ``read_to_s`` seconds into the video. ``frames_to_end``: the ``max_frames`` that would sample
    the whole video as long as its container announces it (``None`` where it announces no
    length). The message is written from these fields."""

    def __init__(self, reason: Literal["max_frames", "decoding_stopped", "decode_budget"], frames_read: int, max_frames: int,
                 read_to_s: float, frames_decoded: int | None = None, frames_announced: int | None = None,
                 frames_to_end: int | None = None) -> None:
        super().__init__(reason, frames_read, max_frames, read_to_s, frames_decoded, frames_announced,
                         frames_to_end)  # pickles
        self.reason = reason
        self.frames_read = frames_read
        self.max_frames = max_frames
        self.read_to_s = read_to_s
        self.frames_decoded = frames_decoded
        self.frames_announced = frames_announced
        self.frames_to_end = frames_to_end

    def __str__(self) -> str:
        if self.reason == "max_frames":
            return f"the video was read to {self.read_to_s:.1f} s only: max_frames={self.max_frames} frames were sampled"
        if self.reason == "decode_budget":
            return (f"the video was read to {self.read_to_s:.1f} s only: {self.frames_decoded:,} frames were decoded, the "
                    f"most for max_frames={self.max_frames} ({MAX_DECODED_FPS} a second of the video its samples may "
                    "cover): its frames come faster than that, or their times stand still")
        return (f"decoding stopped at frame {self.frames_decoded} of the {self.frames_announced} the video announces "
                f"(at {self.read_to_s:.1f} s): the rest could not be read")


def container(head: bytes) -> str | None:
    """The video container these leading bytes open, of those read here, or None. FFmpeg would
    open more (a text file naming other files, read as an ffconcat playlist, pulled the videos
    beside it into the analysis): only these containers are opened."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"  # MP4, QuickTime, 3GP
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # MKV, WebM
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg-ps"
    if head[:1] == b"\x47" and head[188:189] == b"\x47":
        return "mpeg-ts"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"  # WMV
    if head[:3] == b"\xff\xd8\xff":
        return "mjpeg"
    return None


def sample_frames(path: VideoInput, fps: float, max_frames: int) -> Iterator[tuple[float, int, np.ndarray]]:
    """``(time_s, frame_index, gray_frame)`` every ``1 / fps`` seconds, at most ``max_frames`` of them.

    Frames are decoded in order and only the sampled ones are converted; a rate above the
    video's own gives every frame once. Every frame is held to the pixel limits of an image
    (``affect.face._input.check_size``): the size the video announces, each JPEG frame's own
    header before it is decoded (``JpegFrameSizes``), and each sampled frame as decoded; one
    over them is refused (``InputTooLargeError`` naming the frame). At most
    ``decode_budget(fps, max_frames)`` frames are decoded and one more, which says the video goes
    on (it is not counted among the warning's ``frames_decoded``).
    """
    if problem := fps_problem(fps):
        raise InvalidInputError(f"fps {problem}", field="fps")
    if problem := max_frames_problem(max_frames):
        raise InvalidInputError(f"max_frames {problem}", field="max_frames")
    if not isinstance(path, (str, PathLike)):
        raise InvalidInputError(f"video must be a file path, got {type(path).__name__}", field="video")
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidInputError(f"video file not found or empty: {path}", field="video")
    with path.open("rb") as fh:
        if container(fh.read(189)) is None:
            raise InvalidInputError(f"video is not in a container read here (MP4/MOV, AVI, MKV/WebM, Ogg, FLV, MPEG, "
                                    f"WMV, MJPEG): {path.name}", field="video")
    cap = cv2.VideoCapture(str(path))
    headers: JpegFrameSizes | None = None
    try:
        if not cap.isOpened():
            raise InvalidInputError(f"video could not be opened (unknown or corrupt format): {path.name}", field="video")
        check_size(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), field="video")
        native = float(cap.get(cv2.CAP_PROP_FPS))
        if not math.isfinite(native) or native <= 0:
            raise InvalidInputError("video has no valid frame rate", field="video")
        announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        headers = JpegFrameSizes(path)
        budget = decode_budget(fps, max_frames)
        step = 1.0 / fps
        next_time, index, emitted, t, last = 0.0, 0, 0, 0.0, 0.0
        cut_short = over_budget = False
        while True:
            headers.check_through(index + HEADER_LEAD)
            if not cap.grab():
                break
            if index >= budget:  # a frame past the budget: the video goes on
                over_budget = True
                break
            t = _frame_time(cap, index, native, t)
            if t + 1e-6 >= next_time:
                if emitted >= max_frames:  # a frame is due past the last one allowed
                    cut_short = True
                    break
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    check_frame_size(frame.shape[1], frame.shape[0], index)
                    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                    yield t, index, gray
                    emitted, last = emitted + 1, t
                while next_time <= t + 1e-6:
                    next_time += step
            index += 1
        if index == 0:
            raise InvalidInputError(f"no frame of the video could be decoded: {path.name}", field="video")
        if cut_short:
            # samples due at 0, 1/fps, 2/fps ... before the announced end (frame count / frame rate)
            to_end = math.ceil(announced / native * fps - 1e-6) if announced > 0 else None
            warnings.warn(VideoIncompleteWarning("max_frames", emitted, max_frames, last, frames_to_end=to_end),
                          stacklevel=3)
        elif over_budget:
            warnings.warn(VideoIncompleteWarning("decode_budget", emitted, max_frames, t, index), stacklevel=3)
        elif announced > 0 and index < 0.95 * announced:
            warnings.warn(VideoIncompleteWarning("decoding_stopped", emitted, max_frames, t, index, announced),
                          stacklevel=3)
    finally:
        cap.release()
        if headers is not None:
            headers.release()


def decode_budget(fps: float, max_frames: int) -> int:
    """The most frames decoded to sample ``max_frames`` at ``fps``: ``MAX_DECODED_FPS`` for each
    second the samples may cover, and one second more."""
    return math.ceil(max_frames / fps * MAX_DECODED_FPS) + MAX_DECODED_FPS


def check_frame_size(width: int, height: int, index: int) -> None:
    """A frame's size held to an image's limits, the refusal naming the frame (field ``video``)."""
    try:
        check_size(width, height, field=f"video frame {index}")
    except InvalidInputError as exc:
        raise type(exc)(str(exc), field="video") from None


class JpegFrameSizes:
    """The size of each frame of a video whose frames are JPEG pictures (MJPEG, in any
    container), read from its header before FFmpeg decodes it. Each such frame has its own
    size, which may be far more than the stream announces (all that OpenCV tells): FFmpeg
    decoded a later 6400x6400 frame of a 64x48 stream whole, then OpenCV scaled it down to
    64x48, so that the frame as handed over showed nothing.

    A second reader of the file, FFmpeg's demuxer alone (nothing is decoded), kept
    ``HEADER_LEAD`` packets ahead of the decoder. The first packet says whether the frames are
    JPEG pictures (they begin with its start marker); a video of another codec is left to the
    checks on its announced and decoded sizes, as OpenCV gives no way to read or cap the size
    its decoder meets."""

    def __init__(self, path: Path) -> None:
        self._packets = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
        self._read = 0  # packets read
        self._done = not self._packets.isOpened()

    def check_through(self, index: int) -> None:
        """Every frame up to ``index`` checked (or the video's end reached); raises
        ``InputTooLargeError`` naming the first frame over an image's limits."""
        while not self._done and self._read <= index:
            got, packet = self._packets.read()
            data = packet.tobytes() if got and packet is not None else b""
            start = data.find(b"\xff\xd8")
            if not data or (self._read == 0 and start != 0):  # the end, or frames that are not JPEG pictures
                self._done = True
                return
            if start >= 0:
                try:
                    size = read_header(data[start:], f"video frame {self._read}").size
                except InvalidInputError as exc:  # a JPEG over the header limits (scans, segments)
                    raise type(exc)(str(exc), field="video") from None
                if size is not None:  # None: a corrupt header, which the decoder refuses
                    check_frame_size(*size, self._read)
            self._read += 1

    def release(self) -> None:
        self._packets.release()


def _frame_time(cap: cv2.VideoCapture, index: int, native: float, previous: float) -> float:
    """The grabbed frame's own time (a phone's or WebRTC's variable frame rate makes ``index /
    rate`` wrong), or that where the container gives none."""
    stamp = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
    if math.isfinite(stamp) and stamp >= previous and (index == 0 or stamp > 0):
        return stamp
    return index / native


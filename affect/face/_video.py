"""Reading a video file as gray frames sampled at a fixed rate (FFmpeg, through PyAV)."""

from __future__ import annotations

import errno
import math
import warnings
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.container import InputContainer
from av.video.codeccontext import VideoCodecContext
from av.video.stream import VideoStream

from affect._errors import InputTooLargeError, InvalidInputError
from affect.face._input import MAX_PIXELS, check_size, read_header
from affect.media import VideoInput
from affect.option_rules import fps_problem, max_frames_problem
from affect_proto.rules import checked_file_size, read_checked_file

# Frames decoded for each second of video the samples may cover (``max_frames / fps``), and one
# second more: a phone's slow motion (240 a second) is read whole; a video whose frames come
# faster, or whose frame times stand still, is read only as far as that (every frame is
# decoded, sampled or not).
MAX_DECODED_FPS = 240
# FFmpeg's decoder refuses a frame over an image's pixels where it would allocate it (its own cap
# is about 268 million: a 16000x16000 frame held 384 MB, and OpenCV's colour copy of it 768 MB).
# What a refusal holds is the decoder's tables for the new size: 94 MB for a 16000x16000 H.264
# parameter set (by macroblock, up to FFmpeg's cap), nothing measurable for VP9.
_DECODER_OPTIONS = {"max_pixels": str(MAX_PIXELS)}
# Containers that name their streams as their packets come, not in a header (MPEG-TS: when its
# program table comes late), so that FFmpeg's first look at them decodes frames uncapped
# (``_open``), and the list of allowed decoders that names none, which keeps it from decoding.
_STREAMS_NAMED_AS_THEY_COME = ("flv", "mpeg-ps", "mpeg-ts")
_FIRST_LOOK_WITHOUT_DECODING = {"codec_whitelist": "none"}
# Packets in a row that give no frame before the stream is taken to have ended (OpenCV's grab
# gave up after as many reads).
MAX_PACKETS_WITHOUT_FRAME = 4096
# Two distances from a sample's time that are this close are equal: times are ticks of a time base
# (a microsecond or coarser) made floats, whose rounding parts equal ones (a sample at 0.1 s is
# 0.05 s after 0.05 s and 0.04999999999999999 s before 0.15 s).
_AS_NEAR_S = 1e-9


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


def _container_of(path: Path) -> str | None:
    """The container (``container``) of the video file at ``path``, a file with something in it
    that its reader may read; else refused as ``rules.file_path_problem`` says
    (``rules.checked_file_size``, ``rules.read_checked_file``: a string no path could be, such as
    base64, never quoted)."""
    size, problem = checked_file_size(path, "video")
    if problem:
        raise InvalidInputError(problem, field="video")
    if not size:
        raise InvalidInputError(f"video: {path.name!r} is empty (0 bytes)", field="video")
    head, problem = read_checked_file(path, "video", 189)
    if problem:
        raise InvalidInputError(problem, field="video")
    return container(head)


def sample_frames(path: VideoInput, fps: float, max_frames: int) -> Iterator[tuple[float, int, np.ndarray]]:
    """``(time_s, frame_index, gray_frame)`` every ``1 / fps`` seconds, at most ``max_frames`` of them.

    Each sample is the frame stamped nearest its time (``_nearest_frames``): a 30 fps WebM's frames
    stamped 0, 33, 67 ms, or a browser's at capture times a few milliseconds either side, are every
    frame at 30 a second. Each frame is sampled once at most, at its own time: a rate above the
    video's own gives every frame once. Frames are decoded in order and only the sampled ones are
    converted. Every frame is held to the pixel limits of
    an image (``affect.face._input.check_size``): the size the video announces, each frame's size
    as a decoder meets it, FFmpeg's first look at the file too (``_open``), before the frame is
    allocated (FFmpeg's ``max_pixels``, for every codec:
    a stream whose frames grow mid-way, an H.264, HEVC or AV1 stream's new parameter set or a VP9
    key frame, is refused there), each JPEG frame's own header before it is decoded, and each frame
    as decoded; one over them is refused (``InputTooLargeError`` naming the frame). At most
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
    kind = _container_of(path)
    if kind is None:
        raise InvalidInputError(f"video is not in a container read here (MP4/MOV, AVI, MKV/WebM, Ogg, FLV, MPEG, "
                                f"WMV, MJPEG): {path.name}", field="video")
    try:
        opened = _open(path, kind)
    except (av.error.FFmpegError, UnicodeDecodeError):
        raise InvalidInputError(f"video could not be opened (unknown or corrupt format): {path.name}",
                                field="video") from None
    with opened:
        if not opened.streams.video or opened.streams.video[0].codec_context is None:
            raise InvalidInputError(f"video has no video stream that can be decoded: {path.name}", field="video")
        stream = opened.streams.video[0]
        decoder = stream.codec_context
        if decoder.width or decoder.height:  # none announced (FLV's Sorenson H.263 after a first look without
            check_size(decoder.width, decoder.height, field="video")  # decoding): the decoder meets it, capped
        native = float(stream.guessed_rate or 0)
        if not math.isfinite(native) or native <= 0:
            raise InvalidInputError("video has no valid frame rate", field="video")
        announced = _announced_frames(opened, stream, native)
        decoder.options = dict(_DECODER_OPTIONS)
        decoder.thread_type = "SLICE"  # frame threads hold a frame each and report a refused size frames later
        # MPEG-1 in MPEG-PS, looked at without decoding: FFmpeg times a frame whose packet carries no
        # time as if MPEG-1 had no decoder delay, a frame early (in .mpg files FFmpeg writes, with no
        # B-frames). Its pictures come at the one rate its sequence header gives: they are counted.
        counted = kind == "mpeg-ps" and decoder.name == "mpeg1video"
        read = _TimedFrames(_decoded(opened, stream, decoder), stream, native, counted, decode_budget(fps, max_frames))
        emitted, last = 0, 0.0
        cut_short = False
        for t, index, frame in _nearest_frames(read, fps, 1 / native):
            if emitted >= max_frames:  # a frame is due past the last one allowed
                cut_short = True
                break
            yield t, index, _gray(frame)
            emitted, last = emitted + 1, t
        if read.decoded == 0:
            raise InvalidInputError(f"no frame of the video could be decoded: {path.name}", field="video")
        if cut_short:
            # samples due at 0, 1/fps, 2/fps ... before the announced end (frame count / frame rate)
            to_end = math.ceil(announced / native * fps - 1e-6) if announced > 0 else None
            warnings.warn(VideoIncompleteWarning("max_frames", emitted, max_frames, last, frames_to_end=to_end),
                          stacklevel=3)
        elif read.over_budget:
            warnings.warn(VideoIncompleteWarning("decode_budget", emitted, max_frames, read.last_time, read.decoded),
                          stacklevel=3)
        elif announced > 0 and read.decoded < 0.95 * announced:
            warnings.warn(VideoIncompleteWarning("decoding_stopped", emitted, max_frames, read.last_time, read.decoded,
                                                 announced), stacklevel=3)


_Timed = tuple[float, int, av.VideoFrame]  # a frame's time from the stream's start, its index, the frame


class _TimedFrames:
    """The decoded frames, each with its time and index, up to the decode budget, and what was read:
    ``decoded`` frames, the last one at ``last_time`` seconds; ``over_budget`` when a frame past the
    budget came (decoded, not counted: the video goes on)."""

    def __init__(self, frames: Iterator[av.VideoFrame], stream: VideoStream, native: float, counted: bool,
                 budget: int) -> None:
        self._frames, self._stream, self._native, self._counted, self._budget = frames, stream, native, counted, budget
        self.decoded = 0
        self.last_time = 0.0
        self.over_budget = False

    def __iter__(self) -> Iterator[_Timed]:
        for frame in self._frames:
            if self.decoded >= self._budget:
                self.over_budget = True
                return
            index = self.decoded
            self.last_time = (index / self._native if self._counted
                              else _frame_time(frame, self._stream, index, self._native, self.last_time))
            self.decoded += 1
            yield self.last_time, index, frame


def _nearest_frames(frames: Iterable[_Timed], fps: float, period: float) -> Iterator[_Timed]:
    """The frames stamped nearest the samples due at ``k / fps`` seconds, each frame once, in order.

    A sample between two frames' times takes the nearer one; at equal distances the earlier, the
    one on screen at the sample's time (a frame shows until the next replaces it), which is also
    why, of frames stamped alike, the first is kept. A muxer's rounding or cutting of times to its
    clock's tick (a 1 ms time base: 33 ms for a 30 fps video's second frame) and a browser's
    capture times, a few milliseconds either side of a frame's slot, are far less than half a
    frame apart: at a video's own rate every frame is sampled. A frame nearest several samples (a
    rate above the video's own, a gap in a variable-rate video) is sampled once, at its own time:
    a rate above the video's gives every frame once. The last frame stands for a
    sample after it when nearer than a frame ``period`` (the video's rate) after it would be.

    Decided as the frames come: a sample is decided by the first frame past its time, against the
    frame before it, which is the one frame held (unconverted) until then.
    """
    held: _Timed | None = None  # the frame read last, at or before the next sample's time
    held_sampled = False
    due = 0  # the next sample to decide is due at due / fps seconds
    for frame in frames:
        t = frame[0]
        if held is not None and t <= held[0]:
            continue  # stamped as the frame before it (or earlier): that one is as near every sample
        sampled = False
        if due / fps < t:  # samples due before this frame, each the nearer of it and the frame held
            after = _first_sample_at_or_after(t, fps)
            if held is not None and not held_sampled and _earlier_is_nearer(held[0], due / fps, t):
                yield held
            if held is None or not _earlier_is_nearer(held[0], (after - 1) / fps, t):
                yield frame
                sampled = True
            due = after
        held, held_sampled = frame, sampled
    if held is not None and not held_sampled and _earlier_is_nearer(held[0], due / fps, held[0] + period):
        yield held


def _earlier_is_nearer(earlier: float, sample: float, later: float) -> bool:
    """Whether a sample between two frames' times takes the earlier frame: nearer it, or as near
    (within ``_AS_NEAR_S``)."""
    return sample - earlier <= later - sample + _AS_NEAR_S


def _first_sample_at_or_after(t: float, fps: float) -> int:
    """The first ``k`` whose sample, due at ``k / fps`` seconds, is not before ``t``, as ``k / fps`` computes it."""
    k = max(math.ceil(t * fps), 0)
    while k > 0 and (k - 1) / fps >= t:
        k -= 1
    while k / fps < t:
        k += 1
    return k


def _open(path: Path, kind: str) -> InputContainer:
    """The file opened by FFmpeg, whose first look at it decodes no frame over the pixel cap.

    That look (avformat_find_stream_info) decodes a stream's first frames to learn its size and
    pixel format, with the options given (``max_pixels``) only for the streams the container
    names in its header; PyAV has no way to give any to the others. FLV and MPEG-PS name theirs
    as their packets come, as MPEG-TS does when its program table comes late, and their first
    frames were decoded uncapped: two 6400x6400 H.264 frames after a 64x64 one raised the peak
    by 175 MB (a 16000x16000 Sorenson H.263 frame in FLV: 209 MB) before the size the look left
    announced refused the video. In these containers the look decodes nothing: a stream's size is
    what its parser reads in its headers, and its frames are decoded only by the decoder opened
    here, capped."""
    first_look = _FIRST_LOOK_WITHOUT_DECODING if kind in _STREAMS_NAMED_AS_THEY_COME else None
    return av.open(str(path), options=_DECODER_OPTIONS, container_options=first_look)


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


def _decoded(opened: InputContainer, stream: VideoStream, decoder: VideoCodecContext) -> Iterator[av.VideoFrame]:
    """The stream's frames as decoded, each packet's size checked before its frame is allocated.

    FFmpeg's decoder holds every frame to ``max_pixels`` (``_DECODER_OPTIONS``) where it
    allocates it, and fails that packet; that it was the size is read from the decoder then
    (H.264, HEVC: its size is the new one; VP9, MPEG-4, MPEG-2: its size is cleared; AV1's dav1d:
    its own error, ERANGE). A packet that fails otherwise (a damaged one) is skipped, as FFmpeg's
    own tools do; ``MAX_PACKETS_WITHOUT_FRAME`` in a row end the stream. A stream whose size is
    not known before its first frame (``_FIRST_LOOK_WITHOUT_DECODING``) has no size to clear
    until then: a packet that fails before it is skipped, and a first frame over the cap leaves
    none decoded. Frames whose packets are JPEG pictures (MJPEG, in any container) are held to
    their headers first (``read_header``: the size, and the scans a progressive one costs)."""
    jpeg: bool | None = None
    barren = 0  # packets in a row that gave no frame
    sized = bool(decoder.width and decoder.height)  # the decoder has a size FFmpeg would clear on refusing one
    for number, packet in enumerate(opened.demux(stream)):
        data = bytes(packet) if packet.size and jpeg is not False else b""
        if jpeg is None and data:
            jpeg = data.startswith(b"\xff\xd8")
        if jpeg and data:
            _check_jpeg(data, number)
        try:
            frames = decoder.decode(packet)
        except av.error.FFmpegError as failed:
            if failed.errno == errno.ERANGE:  # dav1d (AV1) refused the size (its frame_size_limit, set from max_pixels)
                raise _over_the_limit(number) from None
            frames = []
        if decoder.width and decoder.height:
            sized = True
            check_frame_size(decoder.width, decoder.height, number)
        elif sized:  # FFmpeg refused the size it met (ff_set_dimensions)
            raise _over_the_limit(number)
        barren = 0 if frames else barren + 1
        if barren > MAX_PACKETS_WITHOUT_FRAME:
            return
        for frame in frames:
            check_frame_size(frame.width, frame.height, number)
            yield frame


def _over_the_limit(number: int) -> InputTooLargeError:
    """The refusal of a frame whose size the decoder refused without telling it."""
    return InputTooLargeError(f"video frame {number} is over the limit of {MAX_PIXELS:,} pixels", field="video")


def _check_jpeg(data: bytes, number: int) -> None:
    """A JPEG frame's header held to an image's limits before it is decoded."""
    start = data.find(b"\xff\xd8")
    if start < 0:
        return  # not a picture: the decoder refuses it
    try:
        size = read_header(data[start:], f"video frame {number}").size
    except InvalidInputError as exc:  # a JPEG over the header limits (scans, segments)
        raise type(exc)(str(exc), field="video") from None
    if size is not None:  # None: a corrupt header, which the decoder refuses
        check_frame_size(*size, number)


def _announced_frames(opened: InputContainer, stream: VideoStream, native: float) -> int:
    """The frames the container announces (as OpenCV counts them): its count, or its length at
    the frame rate; 0 where it announces neither."""
    if stream.frames > 0:
        return int(stream.frames)
    if opened.duration is not None and opened.duration > 0:
        return math.floor(opened.duration / av.time_base * native + 0.5)
    if stream.duration is not None and stream.time_base is not None:
        return math.floor(float(stream.duration * stream.time_base) * native + 0.5)
    return 0


def _frame_time(frame: av.VideoFrame, stream: VideoStream, index: int, native: float, previous: float) -> float:
    """The frame's own time from the stream's start (a phone's or WebRTC's variable frame rate
    makes ``index / rate`` wrong), or that where the container gives none."""
    if frame.pts is not None and stream.time_base is not None:
        stamp = float((frame.pts - (stream.start_time or 0)) * stream.time_base)
        if math.isfinite(stamp) and stamp >= previous and (index == 0 or stamp > 0):
            return stamp
    return index / native


def _gray(frame: av.VideoFrame) -> np.ndarray:
    """The frame in gray, turned upright as its display matrix says (a phone's portrait video)."""
    gray = frame.to_ndarray(format="gray")
    clockwise = -round(frame.rotation) % 360  # ``rotation`` is counter-clockwise
    return np.ascontiguousarray(np.rot90(gray, k=-clockwise // 90)) if clockwise in (90, 180, 270) else gray

"""Reading a video file as gray frames sampled at a fixed rate (OpenCV's FFmpeg backend)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from affect._errors import InvalidInputError
from affect.face._input import check_size

MAX_SAMPLE_FPS = 60.0


def sample_frames(path: str | PathLike, fps: float, max_frames: int) -> Iterator[tuple[float, int, np.ndarray]]:
    """``(time_s, frame_index, gray_frame)`` every ``1 / fps`` seconds, at most ``max_frames`` of them.

    Frames are decoded in order and only the sampled ones are converted; a rate above the
    video's own gives every frame once.
    """
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or not 0 < fps <= MAX_SAMPLE_FPS:
        raise InvalidInputError(f"fps must be a number in (0, {MAX_SAMPLE_FPS:g}], got {fps!r}", field="fps")
    if max_frames < 1:
        raise InvalidInputError(f"max_frames must be at least 1, got {max_frames}", field="max_frames")
    if not isinstance(path, (str, PathLike)):
        raise InvalidInputError(f"video must be a file path, got {type(path).__name__}", field="video")
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidInputError(f"video file not found or empty: {path}", field="video")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InvalidInputError(f"video could not be opened (unknown or corrupt format): {path.name}", field="video")
        check_size(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), field="video")
        native = float(cap.get(cv2.CAP_PROP_FPS))
        if not math.isfinite(native) or native <= 0:
            raise InvalidInputError("video has no valid frame rate", field="video")
        step = 1.0 / fps
        next_time, index, emitted = 0.0, 0, 0
        while emitted < max_frames and cap.grab():
            t = index / native
            if t + 1e-6 >= next_time:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                    yield t, index, gray
                    emitted += 1
                while next_time <= t + 1e-6:
                    next_time += step
            index += 1
        if index == 0:
            raise InvalidInputError(f"no frame of the video could be decoded: {path.name}", field="video")
    finally:
        cap.release()

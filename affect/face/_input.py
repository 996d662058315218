"""Turning what callers send (encoded bytes, a file, an array) into one gray uint8 image.

Encoded images are checked before decoding: the size is read from the header, so a
20000x20000 PNG is refused without allocating it. Only JPEG, PNG, BMP and WebP are read.
Sides may differ by at most ``MAX_ASPECT`` times: the detector brings the short side up to
its working size, so a 16384x1 strip would otherwise become a 2.6-gigapixel image.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from os import PathLike
from pathlib import PurePath
from typing import Literal

import cv2
import numpy as np

from affect._errors import InputTooLargeError, InvalidInputError
from affect._file_kinds import HEAD_BYTES, file_kind
from affect.media import ImageInput
from affect_proto.rules import (channel_order_of, channel_order_problem, checked_file_size, image_array_problem, shown_name,
                                read_checked_file)

ChannelOrder = Literal["bgr", "rgb"]

MAX_PIXELS = 40_000_000  # e.g. 8000x5000
MAX_SIDE = 16_384
MAX_BYTES = 50 * 2**20
MAX_ASPECT = 10  # long side / short side; no face frame is a strip

# OpenCV logs each corrupt image it is handed ("[ERROR:0@0.04] global loadsave.cpp ... imdecode_",
# "IHDR chunk shall be first") on standard error, outside any log format and as often as callers
# send one, when the caller gets an InvalidInputError anyway. Turned off (fatal errors only) here,
# where the library decodes what callers send; an operator's OPENCV_LOG_LEVEL stands. libjpeg's
# and libpng's own warnings ("Corrupt JPEG data: ...", "libpng error: ...") are printed by those
# libraries, not through OpenCV's log, and cannot be turned off from here.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)


# The next marker as libjpeg reads it (jdmarker.c, next_marker), from exactly where the previous
# segment ends: bytes other than 0xFF are skipped, a run of 0xFF is fill, 0xFF 0x00 is a stuffed
# byte, and the byte after the run is the marker. Matched at that spot, never searched for: a
# search stepped over a marker right after a segment ending in 0xFF (a low-quality JPEG's
# quantisation table does) and read the marker-like bytes of the next segment instead. Possessive,
# so a long run of 0xFF is scanned once.
_NEXT_MARKER = re.compile(rb"[^\xff]*+(?:\xff++\x00[^\xff]*+)*+\xff++([^\x00\xff])")
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
MAX_JPEG_SCANS = 100  # a progressive JPEG's cost grows with its scans, not its pixels; encoders write about 10
# Segments before the frame header: a camera's or editor's file has tens (APPn metadata, an ICC
# profile in 64 KB pieces, tables). Each costs one step of the walk, and a segment can be 2-4
# bytes, so 16 MB of empty segments would cost seconds of CPU per image without a cap.
MAX_JPEG_HEADER_SEGMENTS = 1_000


_PROGRESSIVE_SOF = frozenset((0xC2, 0xC6, 0xCA, 0xCE))
# OpenCV decodes a WebP picture whole in colour (BGR or BGRA) and only then makes it gray: a
# 4000x4000 WebP raised a decode's peak memory by 7.0 bytes a pixel against 2.0 for the same
# picture as JPEG or PNG (which are read gray row by row), so 5 more bytes a pixel.
WEBP_DECODE_BYTES_PER_PIXEL = 5


@dataclass(frozen=True)
class EncodedHeader:
    """What an encoded image's header says, read in one pass before any decoding."""

    format: str
    size: tuple[int, int] | None  # (width, height); None when the header is truncated or corrupt
    decode_bytes_per_pixel: int = 0  # what decoding holds besides the gray result (``_jpeg_header``, WebP's colour frame)


def read_header(data: bytes, field: str = "image", name: str | None = None) -> EncodedHeader:
    """The header of a JPEG, PNG, BMP or WebP file; raises for other formats (naming the file,
    ``name``, when it was given as a path, and what its header says it is: ``image: call.mp4 is
    an MP4 video, not ...``), for a JPEG of more than ``MAX_JPEG_SCANS`` scans and for one with
    more than ``MAX_JPEG_HEADER_SEGMENTS`` segments before its frame header (naming ``field``, the
    image's own: ``images[2]``)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        size = struct.unpack(">II", data[16:24]) if len(data) >= 24 and data[12:16] == b"IHDR" else None
        return EncodedHeader("png", size)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header(data, field)
    if data.startswith(b"BM"):
        if len(data) < 26:
            return EncodedHeader("bmp", None)
        w, h = struct.unpack("<ii", data[18:26])
        return EncodedHeader("bmp", (abs(w), abs(h)))
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return EncodedHeader("webp", _webp_size(data), WEBP_DECODE_BYTES_PER_PIXEL)
    found = file_kind(data[:HEAD_BYTES])
    what = f"{field}: {name} is" if name else f"{field} is"
    raise InvalidInputError(f"{what} {found.described + ', ' if found else ''}not a JPEG, PNG, BMP or WebP file",
                            field=field)


def _jpeg_header(data: bytes, field: str) -> EncodedHeader:
    """The frame libjpeg will decode (``_jpeg_frame``). A progressive JPEG keeps every coefficient
    of every component until its last scan (2 bytes each, 64 per 8x8 block: 2 bytes a pixel a
    component); a baseline one is decoded a few rows at a time."""
    if (scans := data.count(b"\xff\xda")) > MAX_JPEG_SCANS:  # 0xFF 0xDA cannot occur in entropy-coded data
        raise InputTooLargeError(f"{field} is a JPEG of {scans:,} scans; the limit is {MAX_JPEG_SCANS}", field=field)
    frame = _jpeg_frame(data, field)
    if frame is None:
        return EncodedHeader("jpeg", None)
    width, height, components, progressive = frame
    return EncodedHeader("jpeg", (width, height), 2 * components if progressive else 0)


def _jpeg_frame(data: bytes, field: str) -> tuple[int, int, int, bool] | None:
    """(width, height, components, progressive) of the frame libjpeg will decode: the first SOF
    marker, found by walking the markers after SOI the way libjpeg does (each read where the
    segment before ends); None when there is none before a scan or the end. Raises past ``MAX_JPEG_HEADER_SEGMENTS`` segments."""
    i = 2
    for _ in range(MAX_JPEG_HEADER_SEGMENTS + 1):
        found = _NEXT_MARKER.match(data, i)
        if found is None:
            return None
        at, marker = found.start(1) - 1, found.group(1)[0]
        if marker in _SOF_MARKERS:
            if at + 10 > len(data):
                return None
            h, w = struct.unpack(">HH", data[at + 5 : at + 9])
            return w, h, data[at + 9], marker in _PROGRESSIVE_SOF
        if marker in (0xD8, 0xD9, 0xDA):  # a second SOI, the end, or a scan before any frame header
            return None
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length follows
            i = at + 2
            continue
        if at + 4 > len(data):
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            return None
        i = at + 2 + length
    raise InputTooLargeError(f"{field} is a JPEG with more than {MAX_JPEG_HEADER_SEGMENTS:,} segments before its frame "
                             f"header; the limit is {MAX_JPEG_HEADER_SEGMENTS:,}", field=field)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        b = data[21:25]
        return 1 + (b[0] | (b[1] & 0x3F) << 8), 1 + (b[1] >> 6 | b[2] << 2 | (b[3] & 0x0F) << 10)
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def check_size(width: int, height: int, field: str = "image") -> None:
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{field} has zero size ({width}x{height})", field=field)
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputTooLargeError(
            f"{field} is {width}x{height} pixels; the limit is {MAX_PIXELS:,} pixels and {MAX_SIDE} per side",
            field=field,
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidInputError(
            f"{field} is {width}x{height} pixels; its long side may be at most {MAX_ASPECT} times its short side",
            field=field,
        )


def decode_image(data: bytes, field: str = "image", name: str | None = None) -> np.ndarray:
    """Gray uint8 image from encoded bytes (EXIF orientation applied); problems name ``field``
    (and a file of another kind, ``name``: its file name)."""
    if len(data) == 0:
        raise InvalidInputError(f"{field} is empty (0 bytes)", field=field)
    if len(data) > MAX_BYTES:
        raise InputTooLargeError(f"{field} is {len(data):,} bytes; the limit is {MAX_BYTES:,}", field=field)
    size = read_header(data, field, name).size
    if size is None:
        raise InvalidInputError(f"{field} header is truncated or corrupt", field=field)
    check_size(*size, field=field)
    try:
        gray = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    except cv2.error:  # OpenCV's own pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS; the server sets it) refused it
        raise InputTooLargeError(f"{field} decodes past {MAX_PIXELS:,} pixels", field=field) from None
    if gray is None or gray.size == 0:
        raise InvalidInputError(f"{field} could not be decoded (corrupt or truncated)", field=field)
    if gray.shape not in ((size[1], size[0]), (size[0], size[1])):  # EXIF orientation may turn it
        raise InvalidInputError(f"{field} decodes to {gray.shape[1]}x{gray.shape[0]} pixels but its header says "
                                f"{size[0]}x{size[1]}", field=field)
    return gray


def array_to_gray(array: np.ndarray, channel_order: ChannelOrder | None, field: str = "image") -> np.ndarray:
    """Gray uint8 image from an ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array.

    Colour arrays need ``channel_order`` ("bgr" as OpenCV gives, "rgb" as PIL/imageio give):
    guessing would silently swap red and blue.
    """
    if problem := image_array_problem(str(array.dtype), tuple(array.shape), field):
        raise InvalidInputError(problem, field=field)
    check_size(array.shape[1], array.shape[0], field)
    if array.ndim == 2:
        return np.ascontiguousarray(array)
    if array.shape[2] == 1:
        return np.ascontiguousarray(array[:, :, 0])
    order = channel_order_of(channel_order)
    if order is None:
        raise InvalidInputError(channel_order_problem(channel_order), field="channel_order")
    codes = {
        (3, "bgr"): cv2.COLOR_BGR2GRAY,
        (3, "rgb"): cv2.COLOR_RGB2GRAY,
        (4, "bgr"): cv2.COLOR_BGRA2GRAY,
        (4, "rgb"): cv2.COLOR_RGBA2GRAY,
    }
    return cv2.cvtColor(np.ascontiguousarray(array), codes[(array.shape[2], order)])


def load_gray(image: ImageInput, channel_order: ChannelOrder | None = None, field: str = "image") -> np.ndarray:
    """Any accepted image input as a gray uint8 ``(H, W)`` array; problems name ``field`` (a
    turn's ``image`` or ``images[i]``)."""
    if isinstance(image, np.ndarray):
        return array_to_gray(image, channel_order, field)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image), field)
    if isinstance(image, (str, PathLike)):
        return decode_image(_read_file(image, field), field, shown_name(image))  # read: a path, its name shown
    raise InvalidInputError(
        f"{field} must be encoded bytes, a file path or a uint8 numpy array, got {type(image).__name__}", field=field
    )


def _read_file(image: str | PathLike[str], field: str) -> bytes:
    """The bytes of the image file at ``image``; a path that cannot be read is refused as
    ``rules.file_path_problem`` says (``rules.checked_file_size``, ``rules.read_checked_file``)."""
    size, problem = checked_file_size(image, field)
    if problem:
        raise InvalidInputError(problem, field=field)
    data, problem = (b"", None) if size > MAX_BYTES else read_checked_file(image, field, MAX_BYTES + 1)
    if problem:
        raise InvalidInputError(problem, field=field)
    if max(size, len(data)) > MAX_BYTES:  # read no further than the limit: a file that grew since is not read whole
        raise InputTooLargeError(f"{field} file is {max(size, len(data)):,} bytes; the limit is {MAX_BYTES:,}", field=field)
    return data

"""What a media file's first bytes say it is, for a message that refuses a file given in the
wrong place: ``call.mp4 is an MP4 video, not a JPEG, PNG, BMP or WebP file``. Only the kinds a
caller plausibly mixes up (videos, audio, other images) are told; anything else is ``None``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

HEAD_BYTES = 64  # enough for every signature below
Kind = Literal["video", "audio", "image"]


class FileKind(NamedTuple):
    kind: Kind
    described: str  # "an MP4 video"


_FTYP_IMAGES = (b"heic", b"heix", b"mif1", b"msf1", b"avif")
_FTYP_AUDIO = (b"M4A ", b"M4B ")


def file_kind(head: bytes) -> FileKind | None:
    """What the first ``HEAD_BYTES`` of a file say it is, or ``None``."""
    if head[4:8] == b"ftyp":  # ISO base media: MP4, QuickTime, M4A, HEIF/AVIF
        brand = head[8:12]
        if brand in _FTYP_IMAGES:
            return FileKind("image", "a HEIF/AVIF image")
        if brand in _FTYP_AUDIO:
            return FileKind("audio", "MPEG-4 audio")
        return FileKind("video", "a QuickTime video" if brand == b"qt  " else "an MP4 video")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return FileKind("video", "a Matroska/WebM video")
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return FileKind("video", "an AVI video")
    if head.startswith(b"FLV"):
        return FileKind("video", "an FLV video")
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return FileKind("video", "an MPEG video")
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return FileKind("video", "a Windows Media file")
    if head.startswith(b"OggS"):
        return FileKind("video", "an Ogg video") if b"\x80theora" in head else FileKind("audio", "Ogg audio")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return FileKind("audio", "WAV audio")
    if head.startswith(b"fLaC"):
        return FileKind("audio", "FLAC audio")
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return FileKind("audio", "MP3 audio")
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return FileKind("audio", "AIFF audio")
    if head.startswith(b"GIF8"):
        return FileKind("image", "a GIF image")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return FileKind("image", "a TIFF image")
    return None

"""What a turn's media may be, as type aliases for callers' annotations (``Turn``, ``analyze``,
the encoders). Each says exactly what the check that reads the input accepts, so a type checker
refuses what would be refused at run time: ``Turn(audio=123)`` is an error before it runs.

Audio (``affect.speech.encoder.check_audio_source``) is an array of samples (numpy or torch,
with ``sample_rate``) or a WAV/FLAC/OGG file, as a ``str`` or ``pathlib.Path`` path or as the
file's bytes. An image (``affect.face._input.load_gray``) is a uint8 numpy array, the bytes of
an encoded file, or its path (any ``os.PathLike[str]``). A video (``FaceEncoder.analyze_video``)
is a file's path. An array's type, shape and values are checked when it is read.

Importing this module does not import torch: a torch tensor is named by a forward reference
resolved in torch's module (``ForwardRef("Tensor", module="torch")``), so the aliases stay real
unions at run time (``AudioInput | None``) and ``typing.get_type_hints`` resolves them once torch
is imported.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, ForwardRef, TypeAlias, Union

import numpy as np

AudioFile: TypeAlias = str | Path | bytes | bytearray | memoryview
"""A WAV, FLAC or OGG file: its path (``str`` or ``pathlib.Path``) or its bytes."""

if TYPE_CHECKING:
    import torch

    AudioInput: TypeAlias = Union[np.ndarray, torch.Tensor, AudioFile]
else:  # resolved in torch's own namespace once torch is imported (typing.get_type_hints, pydantic)
    AudioInput = Union[np.ndarray, ForwardRef("Tensor", module="torch"), AudioFile]
"""A turn's audio: int16 or float samples (with ``sample_rate``), or a file."""

ImageInput: TypeAlias = str | PathLike[str] | bytes | bytearray | memoryview | np.ndarray
"""A turn's image: a JPEG/PNG/BMP/WebP file's path or bytes, or a uint8 array (gray, or colour
with ``channel_order``)."""

VideoInput: TypeAlias = str | PathLike[str]
"""A video file's path."""

__all__ = ["AudioFile", "AudioInput", "ImageInput", "VideoInput"]

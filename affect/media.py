"""What a turn's media may be, as type aliases for callers' annotations (``Turn``, ``analyze``,
the encoders). Each says exactly what the check that reads the input accepts, so a type checker
refuses what would be refused at run time: ``Turn(audio=123)`` is an error before it runs.

Audio (``affect.speech.encoder.check_audio_source``) is an array of samples (numpy or torch,
with ``sample_rate``) or a WAV/FLAC/OGG file, as a ``str`` or ``pathlib.Path`` path or as the
file's bytes. An image (``affect.face._input.load_gray``) is a uint8 numpy array, the bytes of
an encoded file, or its path (any ``os.PathLike[str]``). A video (``FaceEncoder.analyze_video``)
is a file's path. An array's type, shape and values are checked when it is read.

Importing this module does not import torch: a torch tensor is named by a forward reference
(``"torch.Tensor"``), so the aliases stay real unions at run time (``AudioInput | None``).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, Union

import numpy as np

if TYPE_CHECKING:
    import torch

AudioFile: TypeAlias = str | Path | bytes | bytearray | memoryview
"""A WAV, FLAC or OGG file: its path (``str`` or ``pathlib.Path``) or its bytes."""

AudioInput: TypeAlias = Union[np.ndarray, "torch.Tensor", AudioFile]  # Union: ``|`` takes no forward reference
"""A turn's audio: int16 or float samples (with ``sample_rate``), or a file."""

ImageInput: TypeAlias = str | PathLike[str] | bytes | bytearray | memoryview | np.ndarray
"""A turn's image: a JPEG/PNG/BMP/WebP file's path or bytes, or a uint8 array (gray, or colour
with ``channel_order``)."""

VideoInput: TypeAlias = str | PathLike[str]
"""A video file's path."""

__all__ = ["AudioFile", "AudioInput", "ImageInput", "VideoInput"]

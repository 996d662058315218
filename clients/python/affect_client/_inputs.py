"""Building a turn's wire message from what a caller has: text, audio, images.

A turn takes what the library's ``Turn`` takes: ``audio`` as a file path, the bytes of a
WAV/FLAC/OGG file, an int16 or float array (with ``sample_rate``) or an ``Audio``; ``image`` /
``images`` as file paths, JPEG/PNG bytes, uint8 arrays (colour ones with ``channel_order``) or
``Image``: ``AudioInput`` and ``ImageInput``, which a type checker holds callers to. Arrays are
duck-typed (numpy is not a dependency of the client): ``Array`` is what is read of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any, Protocol, Sequence, TypeAlias

from affect_client._exceptions import InvalidInputError, TurnInputError
from affect_proto import affect_pb2 as pb
from affect_proto import encodings, rules


class Array(Protocol):
    """A numpy array, as the client reads one (``_is_array``: ``ndim``, ``dtype``, ``tobytes``)
    and lays it out for the wire (``shape``, ``astype``): numpy's ``ndarray`` is one."""

    @property
    def ndim(self) -> int: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> object: ...

    def astype(self, dtype: str) -> Array: ...

    def tobytes(self) -> bytes: ...


@dataclass(frozen=True)
class Audio:
    """A turn's audio. Build it with one of the class methods."""

    data: bytes
    encoding: pb.AudioEncoding
    sample_rate_hz: int = 0
    channels: int = 0

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> "Audio":
        """A WAV, FLAC or OGG file, sent whole; the server reads its rate and channels. A path that
        cannot be read raises ``InvalidInputError`` (a string no path could be, such as base64,
        is never quoted)."""
        return cls(_read(path, "audio"), pb.AUDIO_FILE)

    @classmethod
    def pcm16(cls, data: bytes, sample_rate_hz: int, channels: int = 1) -> "Audio":
        """Raw 16-bit little-endian PCM, channels interleaved."""
        return cls(bytes(data), pb.PCM_S16LE, sample_rate_hz, channels)

    @classmethod
    def from_array(cls, samples: Array, sample_rate_hz: int) -> "Audio":
        """A numpy array of int16 or float samples (in [-1, 1]), shape (n,), (n, channels) or
        (channels, n), read as the library reads it (``affect_proto.rules.audio_layout``)."""
        return _array_audio(samples, sample_rate_hz)

    def to_pb(self) -> pb.Audio:
        return pb.Audio(data=self.data, encoding=self.encoding, sample_rate_hz=self.sample_rate_hz, channels=self.channels)


@dataclass(frozen=True)
class Image:
    """A turn's image (a video frame, a webcam still). Build it with one of the class methods."""

    data: bytes
    encoding: pb.ImageEncoding
    width: int = 0
    height: int = 0

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> "Image":
        """A JPEG or PNG file. A path that cannot be read raises ``InvalidInputError`` (a string no
        path could be, such as base64, is never quoted)."""
        return cls(_read(path, "image"), pb.ENCODED)

    @classmethod
    def encoded(cls, data: bytes) -> "Image":
        return cls(bytes(data), pb.ENCODED)

    @classmethod
    def from_array(cls, pixels: Array, *, channel_order: str | None = None, color_order: str | None = None) -> "Image":
        """A uint8 numpy array: (h, w) gray, (h, w, 1), or (h, w, 3) / (h, w, 4) colour with
        ``channel_order`` "bgr" (OpenCV) or "rgb" (PIL), its alpha not sent (``color_order``: the
        older name). Checked as ``send(image=array)`` checks one: an array it refuses raises
        ``InvalidInputError`` (field ``pixels``, or ``channel_order``)."""
        return _array_image(pixels, channel_order or color_order, "pixels")

    def to_pb(self) -> pb.Image:
        return pb.Image(data=self.data, encoding=self.encoding, width=self.width, height=self.height)


AudioInput: TypeAlias = str | PathLike[str] | bytes | bytearray | memoryview | Array | Audio
"""A turn's audio (``to_audio``): a WAV/FLAC/OGG file's path or bytes, an int16 or float array
(with ``sample_rate``), or an ``Audio``."""

ImageInput: TypeAlias = str | PathLike[str] | bytes | bytearray | memoryview | Array | Image
"""A turn's image (``to_image``): a JPEG/PNG file's path or bytes, a uint8 array (colour ones
with ``channel_order``), or an ``Image``."""


def turn_message(
    text: str | bytes | None = None,
    *,
    speaker: str | None = None,
    audio: AudioInput | None = None,
    sample_rate: int | None = None,
    image: ImageInput | None = None,
    images: Sequence[ImageInput] = (),
    channel_order: str | None = None,
    turn_id: str = "",
) -> pb.Turn:
    """The wire message of one turn (arguments as the library's ``Turn``), after the contract's
    rules (``affect_proto.rules``) that can be checked here: a turn that breaks one is refused
    before it is sent (``TurnInputError``, field the argument), with the library's message."""
    try:
        if problem := rules.images_not_a_list(images):
            raise InvalidInputError(problem, field="images")
        every = ([image] if image is not None else []) + list(images)
        _check_rules(text, speaker, turn_id, audio is not None, len(every))
        turn = pb.Turn(turn_id=turn_id, speaker=speaker or "")
        if text is not None:
            turn.text = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if audio is not None:
            turn.audio.CopyFrom(to_audio(audio, sample_rate).to_pb())
        turn.images.extend(to_image(item, channel_order, name).to_pb() for item, name in zip(every, _image_fields(image, images)))
        return turn
    except InvalidInputError as refused:  # raised as one turn's refusal, as one over a told limit is (_limits)
        raise TurnInputError(str(refused), field=refused.field,
                             turn_id=turn_id if isinstance(turn_id, str) else "") from None


def _image_fields(image: ImageInput | None, images: Sequence[ImageInput]) -> list[str]:
    """How the user wrote each image sent, in order, to name it in a refusal: ``image``, then ``images[i]``."""
    return (["image"] if image is not None else []) + [f"images[{i}]" for i in range(len(images))]


def _check_rules(text: str | bytes | None, speaker: str | None, turn_id: str, has_audio: bool, images: int) -> None:
    media = has_audio or images > 0
    if text is None and not media:
        raise InvalidInputError(rules.EMPTY_TURN, field="turn")
    for field, value in (("speaker", speaker), ("turn_id", turn_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{field} must be a string, got {type(value).__name__}", field=field)
    problems = [
        ("speaker", rules.id_problem(speaker or "", "speaker")),
        ("turn_id", rules.id_problem(turn_id, "turn_id")),
        ("images", rules.too_many_images(images)),
        ("text", _text_problem(text, media)),
    ]
    for field, problem in problems:
        if problem:
            raise InvalidInputError(problem, field=field)


def _text_problem(text: object, media: bool) -> str | None:
    """What the server would refuse in a turn's text (the library's ``clean_text``), or None. Text
    that is none to read (``rules.reads_as_no_text``: empty or white space, an empty transcript)
    is sent as it is beside audio or images (``media``), which the turn is read from, TEXT absent
    (``rules.EMPTY_TEXT``); alone, it is refused."""
    if text is None:
        return None
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"text is not valid UTF-8 (byte {exc.start})"
    if not isinstance(text, str):
        return f"text must be a string, got {type(text).__name__}"
    if rules.reads_as_no_text(text):
        return None if media else rules.only_empty_text("text")
    return rules.text_too_long(len(text))


def _is_array(value: Any) -> bool:
    return hasattr(value, "ndim") and hasattr(value, "dtype") and hasattr(value, "tobytes")


def _read(path: str | PathLike[str], field: str) -> bytes:
    """The bytes of the file at ``path``; one that cannot be read is refused as
    ``rules.file_path_problem`` says (``rules.checked_file_size``, ``rules.read_checked_file``),
    never quoting a string that is no path (base64, a data: URI)."""
    _, problem = rules.checked_file_size(path, field)
    if problem:
        raise InvalidInputError(problem, field=field)
    data, problem = rules.read_checked_file(path, field)
    if problem:
        raise InvalidInputError(problem, field=field)
    return data


def to_audio(audio: Any, sample_rate: int | None = None) -> Audio:
    """An ``Audio`` from a path, file bytes, a sample array (with ``sample_rate``) or an ``Audio``.
    Bytes are a file: with ``sample_rate`` they are raw samples, refused (``Audio.pcm16`` sends those)."""
    if isinstance(audio, Audio):
        if audio.encoding != pb.AUDIO_FILE:  # raw samples: their rate and channels as an array's
            if problem := rules.sample_rate_problem(audio.sample_rate_hz, "audio.sample_rate_hz"):
                raise InvalidInputError(problem, field="audio.sample_rate_hz")
            if problem := encodings.channels_problem(audio.channels, "audio.channels"):
                raise InvalidInputError(problem, field="audio.channels")
        return audio
    if isinstance(audio, (str, PathLike)):
        return Audio(_read(audio, "audio"), pb.AUDIO_FILE)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        if not len(audio):
            raise InvalidInputError("audio is empty (0 bytes)", field="audio")
        if problem := rules.file_bytes_with_rate_problem(audio, sample_rate, "Audio.pcm16(data, sample_rate)"):
            raise InvalidInputError(problem, field="audio")
        return Audio(bytes(audio), pb.AUDIO_FILE)
    if _is_array(audio):
        if sample_rate is None:
            raise InvalidInputError("an audio array needs sample_rate=", field="sample_rate")
        return _array_audio(audio, sample_rate)
    raise InvalidInputError(f"audio must be a file path, file bytes, a sample array or Audio, not {type(audio).__name__}",
                            field="audio")


def _array_audio(samples: Any, sample_rate: object) -> Audio:
    """Raw audio from an array of samples, checked by the library's rules (``affect_proto.rules``:
    the rate, the sample type, the shape, and float samples' values), laid out as the library
    reads it: frames of interleaved channels, a ``(channels, n)`` array transposed."""
    problem = rules.sample_rate_problem(sample_rate)
    if problem:
        raise InvalidInputError(problem, field="sample_rate")
    shape = tuple(int(n) for n in samples.shape)
    if problem := rules.audio_dtype_problem(str(samples.dtype)) or rules.audio_shape_problem(shape):
        raise InvalidInputError(problem, field="audio")
    _, channels, channels_first = rules.audio_layout(shape) or (0, 1, False)
    frames = samples.T if channels_first else samples
    rate = int(sample_rate)  # type: ignore[call-overload]  # the rule has checked it is a whole number
    if str(samples.dtype) == "int16":  # int16 PCM is always within range
        return Audio(frames.astype(encodings.RAW_AUDIO_DTYPES[pb.PCM_S16LE]).tobytes(), pb.PCM_S16LE, rate, channels)
    floats = frames.astype(encodings.RAW_AUDIO_DTYPES[pb.FLOAT32_LE])
    mono = floats.mean(axis=1) if floats.ndim == 2 else floats  # the mix whose peak the rule reads, as the library's
    if problem := rules.samples_peak_problem(float(abs(mono).max())):  # NaN or inf make the peak so
        raise InvalidInputError(problem, field="audio")
    return Audio(floats.tobytes(), pb.FLOAT32_LE, rate, channels)


def to_image(image: Any, channel_order: str | None = None, field: str = "image") -> Image:
    """An ``Image`` from a path, JPEG/PNG bytes, a uint8 array or an ``Image``; ``field``: the
    argument it was given as (``image``, ``images[2]``), named in a refusal."""
    if isinstance(image, Image):
        return image
    if isinstance(image, (str, PathLike)):
        return Image(_read(image, field), pb.ENCODED)
    if isinstance(image, (bytes, bytearray, memoryview)):
        if not len(image):
            raise InvalidInputError(f"{field} is empty (0 bytes)", field=field)
        return Image(bytes(image), pb.ENCODED)
    if _is_array(image):
        return _array_image(image, channel_order, field)
    raise InvalidInputError(f"{field} must be a file path, JPEG/PNG bytes, a uint8 array or Image, "
                            f"not {type(image).__name__}", field=field)


def _array_image(pixels: Any, channel_order: str | None, field: str) -> Image:
    """An ``Image`` of a uint8 array, checked as the library checks one (``rules.image_array_problem``):
    (H, W) or (H, W, 1|3|4), colour ones with ``channel_order``; alpha is not sent. ``field``
    names the array in a refusal."""
    if problem := rules.image_array_problem(str(pixels.dtype), tuple(pixels.shape), field):
        raise InvalidInputError(problem, field=field)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        encoding = pb.RAW_GRAY8
    elif (order := rules.channel_order_of(channel_order)) is not None:
        pixels = pixels[:, :, :3]  # alpha is not sent
        encoding = pb.RAW_BGR8 if order == "bgr" else pb.RAW_RGB8
    else:
        raise InvalidInputError(f"{field}: {rules.channel_order_problem(channel_order)}", field="channel_order")
    return Image(pixels.tobytes(), encoding, int(pixels.shape[1]), int(pixels.shape[0]))

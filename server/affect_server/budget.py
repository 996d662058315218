"""What a turn will cost once decoded, read from the wire message and the media headers alone.

Nothing is decoded here: raw audio and raw pixels carry their sizes in the message, audio
files are probed (``soundfile.info`` behind the contract's checks), encoded images give their
size in the header. A turn over a per-turn limit is refused here with ``InvalidInputError``
naming the wire field (it can never fit); what is left is a ``TurnCost`` that admission
(``limits.InFlightBudget``) reserves before the turn is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from affect import InputTooLargeError, InvalidInputError
from affect.face._input import check_size, read_header
from affect.limits import check_image_count
from affect.speech._audio import check_rate, probe_file
from affect_proto import affect_pb2 as pb
from affect_proto import encodings, rules
from affect_server.config import ServerConfig

MODEL_RATE = 16_000


@dataclass(frozen=True)
class TurnCost:
    """A turn's size in decoded units, and the bytes it may hold at its peak while prepared."""

    message_bytes: int = 0
    text_chars: int = 0
    audio_seconds: float = 0.0
    audio_values: int = 0  # samples x channels at the source rate
    image_pixels: int = 0  # width x height summed over the images
    image_decode_bytes: int = 0  # what decoding holds besides the gray pixels (progressive JPEGs' coefficients)

    @property
    def decoded_bytes(self) -> int:
        """Peak memory estimate: float32 decode of every channel, its mono mix, the 16 kHz copy
        and the model's features; gray pixels, the detector's working copies and what a decoder
        holds meanwhile."""
        audio = 8 * self.audio_values + int(self.audio_seconds * MODEL_RATE * 4 * 3)
        return self.message_bytes + audio + 5 * self.image_pixels + self.image_decode_bytes + 8 * self.text_chars

    def heaviest_field(self) -> str:
        audio, images = 4 * self.audio_values, 5 * self.image_pixels
        if audio == images == 0:
            return "turn"
        return "turn.audio.data" if audio >= images else "turn.images"

    def is_heavy(self, config: ServerConfig) -> bool:
        return self.audio_seconds > config.heavy_audio_seconds or self.image_pixels > config.heavy_image_pixels


def measure(message: pb.Turn, config: ServerConfig) -> TurnCost:
    """The turn's cost; raises ``InvalidInputError`` (naming the wire field) for a turn over a
    per-turn limit or whose headers contradict the contract."""
    check_image_count(len(message.images), field="turn.images")  # first: a count is free, each image is not
    text_chars = 0
    if message.HasField("text"):
        text_chars = len(message.text)  # UTF-8 never has fewer bytes than characters: the bytes bound them
        if problem := encodings.text_too_long(message.text, config.max_text_chars):
            raise InputTooLargeError(problem, field="turn.text")
    seconds, values = _audio_cost(message.audio, config) if message.HasField("audio") else (0.0, 0)
    pixels = decode_bytes = 0
    for index, image in enumerate(message.images):
        image_pixels, per_pixel = _image_pixels(image, f"turn.images[{index}]")
        pixels += image_pixels
        decode_bytes = max(decode_bytes, image_pixels * per_pixel)  # decoded one by one
    if problem := rules.too_many_pixels(pixels, config.max_image_pixels, "turn.images"):
        raise InputTooLargeError(problem, field="turn.images")
    return TurnCost(message_bytes=message.ByteSize(), text_chars=text_chars, audio_seconds=seconds, audio_values=values,
                    image_pixels=pixels, image_decode_bytes=decode_bytes)


def _audio_cost(audio: pb.Audio, config: ServerConfig) -> tuple[float, int]:
    if audio.encoding == pb.AUDIO_FILE:
        _check_not_empty(audio)
        info = probe_file(audio.data, max_seconds=config.max_audio_seconds,
                          max_values=config.max_audio_samples, field="turn.audio.data")
        return info.frames / info.sample_rate, info.frames * info.channels
    size = encodings.raw_audio_size(audio)
    if size is None:
        return 0.0, 0  # refused with its field by the conversion (convert.py)
    check_rate(size.rate, field="turn.audio.sample_rate_hz")  # before a length read at a rate we refuse
    _check_not_empty(audio)
    if problem := size.budget_problem(max_seconds=config.max_audio_seconds, max_values=config.max_audio_samples):
        raise InputTooLargeError(problem, field="turn.audio.data")
    return size.seconds, size.values


def _check_not_empty(audio: pb.Audio) -> None:
    """Refuse a file or raw samples of 0 bytes under the field that is empty (left to the
    library, empty samples were refused as ``turn.audio``)."""
    if not audio.data:
        raise InvalidInputError("turn.audio.data is empty", field="turn.audio.data")


def _image_pixels(image: pb.Image, field: str) -> tuple[int, int]:
    """(pixels, bytes per pixel its decoding holds besides the result) from the header alone."""
    per_pixel = 0
    if image.encoding == pb.ENCODED:
        if not image.data:
            raise InvalidInputError(f"{field}.data is empty", field=f"{field}.data")
        header = read_header(image.data, f"{field}.data")  # its problems name the field: "turn.images[0].data is not ..."
        if header.size is None:
            raise InvalidInputError(f"{field}.data: the image header is truncated or corrupt", field=f"{field}.data")
        (width, height), per_pixel = header.size, header.decode_bytes_per_pixel
    elif image.encoding in encodings.RAW_IMAGE_CHANNELS:
        width, height = image.width, image.height
        if not width or not height:
            return 0, 0  # refused with its field by the conversion (convert.py)
    else:
        return 0, 0
    check_size(width, height, field=field)
    return width * height, per_pixel

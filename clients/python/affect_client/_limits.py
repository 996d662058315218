"""Whether a turn fits before it is sent: the client's own message size, and the limits the server
told its conversation on opening (``TurnLimits``).

A request over the message size a server reads is refused by gRPC itself once it is on its way,
and a conversation's whole stream ends with it (RESOURCE_EXHAUSTED; grpc.aio reads it as
INTERNAL). So every request's size is checked here first, against the smaller of the client's
own limit (``MAX_MESSAGE_BYTES``, its channel's) and the server's ``max_message_bytes``: one that
would not fit raises ``TurnTooLargeError`` unsent, and the conversation goes on.

The server's per-turn limits that the message itself shows are checked too (the number of
images, text characters, raw audio's length and samples, raw images' pixels), raising
``TurnInputError`` (a ``TurnRefusedError`` and an ``InvalidInputError``, as the turn's own
input checks raise) with the code, field and message the server would answer with, by the
contract's rules (``affect_proto.rules``), read from the message as the server reads them
(``affect_proto.encodings``). Audio files and encoded images are measured by the
server alone, from their headers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Union

from affect_proto import affect_pb2 as pb
from affect_proto import encodings, rules

from affect_client import _constants as C
from affect_client._exceptions import TurnInputError, TurnTooLargeError
from affect_client._types import TurnLimits

NOT_TOLD = TurnLimits()

Request = Union[pb.ConverseRequest, pb.AnalyzeRequest]


def check_size(request: Request, limits: TurnLimits = NOT_TOLD) -> None:
    """Raise ``TurnTooLargeError`` when ``request`` is larger on the wire than the server reads
    (``limits.max_message_bytes``, when told) or than this client sends (``MAX_MESSAGE_BYTES``)."""
    size = request.ByteSize()
    told = limits.max_message_bytes
    limit = min(told, C.MAX_MESSAGE_BYTES) if told else C.MAX_MESSAGE_BYTES
    if size <= limit:
        return
    turn_id = request.turn.turn_id if request.HasField("turn") else ""
    raise TurnTooLargeError.over(size, limit, told=limit == told, turn_id=turn_id)


def check_fits(request: pb.ConverseRequest, limits: TurnLimits) -> None:
    """Raise the refusal of a conversation's request that would not fit: ``check_size``, then a
    turn's own limits as the server checks them (``turn_problem``: ``TurnInputError``)."""
    check_size(request, limits)
    if request.HasField("turn") and (problem := turn_problem(request.turn, limits)):
        field, message = problem
        raise TurnInputError(message, field=field, turn_id=request.turn.turn_id)


def turn_problem(turn: pb.Turn, limits: TurnLimits) -> tuple[str, str] | None:
    """The wire field and the server's message for the first told limit ``turn`` is over, in the
    order the server checks them, or None."""
    if limits.max_images and (problem := rules.too_many_images(len(turn.images), limits.max_images)):
        return "turn.images", f"turn.images: {problem}"
    if limits.max_text_chars and turn.HasField("text") and (
            problem := encodings.text_too_long(turn.text, limits.max_text_chars)):
        return "turn.text", problem
    if turn.HasField("audio") and (problem := _raw_audio_problem(turn.audio, limits)):
        return "turn.audio.data", problem
    pixels = _raw_pixels(turn.images)
    if limits.max_image_pixels and pixels and (problem := rules.too_many_pixels(pixels, limits.max_image_pixels)):
        return "turn.images", problem
    return None


def _raw_audio_problem(audio: pb.Audio, limits: TurnLimits) -> str | None:
    """Raw samples over the told seconds or samples x channels; a file's length is in its header,
    which the server reads."""
    size = encodings.raw_audio_size(audio)
    if size is None or not (limits.max_audio_seconds or limits.max_audio_samples):
        return None
    if rules.sample_rate_problem(size.rate) or encodings.channels_problem(audio.channels):
        return None  # refused already by the client's own checks (``_inputs.to_audio``); no budget to divide by
    return size.budget_problem(max_seconds=limits.max_audio_seconds or math.inf,
                               max_values=limits.max_audio_samples or math.inf)


def _raw_pixels(images: Iterable[pb.Image]) -> int:
    """Width x height summed over the images, when every one is raw (an encoded one's size is in
    its header, which the server reads); 0 otherwise."""
    total = 0
    for image in images:
        if image.encoding not in encodings.RAW_IMAGE_CHANNELS:
            return 0
        total += image.width * image.height
    return total

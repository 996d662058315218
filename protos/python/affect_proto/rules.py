"""The rules every turn of the affect contract meets, written once (plain Python: no protobuf).

The library (``affect.limits``, ``Conversation.prepare``), the server's wire conversion and the
client's pre-check (``affect_client``) all read them here; each raises its own error type with
the message and field these functions give. A server may be stricter (its settings), never
looser. Hand-written: ``python -m protos.generate`` leaves this file alone.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path, PurePath
from urllib.parse import parse_qsl, urlencode

MAX_ID_CHARS = 128  # a speaker's name, a turn id, a conversation id
MAX_IMAGES_PER_TURN = 8
MAX_TEXT_CHARS = 10_000  # longer text is refused, never cut
MAX_EVENT_SPEAKERS = 16  # names in a conversation's event_speakers: as many speakers as its state keeps
# Keepalive: a client may send HTTP/2 pings on its connection as often as every MIN_KEEPALIVE_S
# while a call is open (the Python client's keepalive_s may not be shorter), and an affect server
# accepts them that often: it takes a ping that comes less than half of it after the one before,
# with nothing sent between, as a strike, and ends the connection at the third (GOAWAY
# "too_many_pings"), as gRPC's servers do by default at 5 minutes.
MIN_KEEPALIVE_S = 5.0

EMPTY_TURN = "a turn needs at least one of text, audio or images"


def id_too_long(value: str, field: str) -> str | None:
    """Why ``value`` may not be an id or name for its length, or None when it may."""
    return f"{field} is longer than {MAX_ID_CHARS} characters" if len(value) > MAX_ID_CHARS else None


_NOT_IN_IDS = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")  # control, format and line-separator characters


def id_problem(value: str, field: str) -> str | None:
    """Why ``value`` may not be an id or name, or None when it may: at most ``MAX_ID_CHARS``
    characters, none of them control, format or line-separator characters (a newline in an id
    would forge lines in a log)."""
    if problem := id_too_long(value, field):
        return problem
    for position, char in enumerate(value):
        if unicodedata.category(char) in _NOT_IN_IDS:
            return f"{field} has a control or format character (U+{ord(char):04X}) at position {position}"
    return None


def event_speakers_problem(names: object, field: str = "event_speakers") -> str | None:
    """Why ``names`` may not be a conversation's event speakers (the speakers whose events are
    raised), or None when they may: a list (not one name alone, which would be read letter by
    letter) of at most ``MAX_EVENT_SPEAKERS`` names, each a speaker's name as a turn gives it and
    not empty (turns without a speaker are one unnamed speaker, which is watched only with all)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        return f"{field} must be a list of speaker names (one name as [name])"
    listed = list(names)
    if len(listed) > MAX_EVENT_SPEAKERS:
        return f"{field} names {len(listed)} speakers; the limit is {MAX_EVENT_SPEAKERS}"
    for index, name in enumerate(listed):
        if problem := named_speaker_problem(name, f"{field}[{index}]"):
            return problem
    return None


def as_listed(names: object) -> object:
    """``names`` read once into a tuple when it is a collection or an iterator of names (not one
    name alone, which ``event_speakers_problem`` refuses as it is); anything else as it is."""
    return tuple(names) if isinstance(names, Iterable) and not isinstance(names, (str, bytes)) else names


def named_speaker_problem(value: object, field: str = "speaker") -> str | None:
    """Why ``value`` may not name one speaker, or None when it may: a string, a speaker's name as
    a turn gives it (``id_problem``), and not empty: turns without a speaker are one unnamed
    speaker, who cannot be picked out alone (name your speakers)."""
    if not isinstance(value, str):
        return f"{field} must be a string, got {type(value).__name__}"
    if not value:
        return f"{field} is empty: name the speaker (turns without a speaker cannot be picked out)"
    return id_problem(value, field)


def cleaned_text(text: str) -> str:
    """Text as it is read: characters that are neither printable nor white space removed, stripped."""
    return "".join(ch for ch in text if ch.isprintable() or ch.isspace()).strip()


# Why TEXT is absent from a turn's result (``TurnResult.absent``, as "no speech detected" is for
# silence) when its text reads as none (``reads_as_no_text``) and it carries audio or images.
EMPTY_TEXT = "empty text"


def reads_as_no_text(text: str) -> bool:
    """Whether a turn's text is none to read: empty, or nothing left once cleaned (``cleaned_text``:
    white space and control characters only), as a speech recogniser's empty transcript is. A
    turn that also carries audio or images is read from them, TEXT absent (``EMPTY_TEXT``); one
    that carries nothing else is refused (``only_empty_text``). Text over ``MAX_TEXT_CHARS`` is
    never none: it is refused as too long, whatever it holds."""
    return len(text) <= MAX_TEXT_CHARS and not cleaned_text(text)


def only_empty_text(field: str = "text") -> str:
    """Why a turn whose only modality is text that reads as none is refused."""
    return f"{field} is empty (nothing but white space) and the turn has no audio or images to read instead"


def no_model_loaded(modality: str) -> str:
    """Why a modality a turn carries is absent from its result (``TurnResult.absent``) where no
    model of it is loaded (``Analyzer(text=None)``, ``affect serve --text-model none``) and the
    turn carries another that is read: a voice bot's transcript beside its audio, on a
    speech-only deployment. ``modality``: its name ("text", "speech", "face")."""
    return f"no {modality} model loaded"


def no_model_for(modalities: Iterable[str]) -> str:
    """Why a turn is refused when nothing it carries can be read for want of the models
    (``modalities``: the names of those it carries, in the modality order); the refusal names the
    field of the first."""
    return f"this analyzer has no {' or '.join(modalities)} encoder loaded"


def too_many_images(images: int, limit: int = MAX_IMAGES_PER_TURN) -> str | None:
    return f"a turn may carry at most {limit} images" if images > limit else None


CHANNEL_ORDERS = ("bgr", "rgb")  # OpenCV's, PIL's


def channel_order_of(value: object) -> str | None:
    """A colour image array's channel order as the readers take it ("bgr" or "rgb", given in
    either case: "BGR" is how OpenCV's documentation writes it), or None for anything else."""
    if isinstance(value, str) and value.lower() in CHANNEL_ORDERS:
        return value.lower()
    return None


def channel_order_problem(value: object) -> str:
    """The refusal of a colour array's ``value`` that ``channel_order_of`` does not take (field ``channel_order``)."""
    return f'a colour image array needs channel_order "bgr" (OpenCV) or "rgb" (PIL), got {value!r}'


IMAGE_ARRAY_CHANNELS = (1, 3, 4)  # gray, colour, colour with alpha (not read)


def image_array_problem(dtype: str, shape: tuple[int, ...], field: str = "image") -> str | None:
    """Why pixels of ``dtype`` (numpy's name, ``str(array.dtype)``) and ``shape`` may not be an
    image, or None when they may: uint8, ``(H, W)`` or ``(H, W, 1|3|4)``. Its size is checked
    apart (the library's pixel limits, a server's per-turn budget)."""
    if dtype != "uint8":
        return f"{field}: an image array must be uint8, got {dtype}"
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in IMAGE_ARRAY_CHANNELS):
        return f"{field}: an image array must be (H, W) or (H, W, 1|3|4), got shape {shape}"
    return None


def too_many_pixels(pixels: int, limit: int, field: str = "turn.images") -> str | None:
    """A turn's images measured by their pixels (width x height) summed, against a server's
    per-turn budget (its ``max_image_pixels``)."""
    return f"{field} hold {pixels:,} pixels in all; the limit is {limit:,} per turn" if pixels > limit else None


def images_not_a_list(images: object) -> str | None:
    """A single picture given as ``images`` (a path, encoded bytes, an array) would be read as a
    list of its characters, bytes or rows."""
    single = isinstance(images, (str, bytes, bytearray, memoryview, PathLike)) or (
        hasattr(images, "ndim") and hasattr(images, "dtype"))
    return "images must be a list; pass a single image as image=" if single else None


def text_too_long(chars: int, field: str = "text", limit: int = MAX_TEXT_CHARS) -> str | None:
    """Text is measured as sent (characters, before any cleaning)."""
    return f"{field} has {chars:,} characters; the limit is {limit:,}" if chars > limit else None


# A call the server ends by refusing what it was sent (an Analyze request's turn or options, a
# conversation's opening) names the refused field, as a ``TurnError``'s ``field`` does
# (``turn.audio.data``, ``options.text_prior``; ``turn`` for a whole turn, e.g. refused as busy),
# in this trailing metadata key. A refusal of the call itself (a server draining, a deadline,
# gRPC's own message size limit) names none.
REFUSED_FIELD_TRAILER = "affect-field"


# A call the server ends of its own accord (not a refusal of one turn, which a ``TurnError`` answers)
# says why in this trailing metadata key: a short word, the reason the server counts it under in its
# metrics ("draining", "duplicate", "busy", ...). A client may act on the ones named below; the
# others are for logs. A server from before this key sends none.
ABORT_REASON_TRAILER = "affect-reason"
# A conversation's stream ended DEADLINE_EXCEEDED with this reason: the server closed it after its
# idle_timeout_s without a turn (a caller on hold), and freed its state. The client kept what a
# resume needs: it may open the conversation again (``OpenConversation.resume``) and carry on.
IDLE_REASON = "idle"
# A conversation's stream ended ABORTED with this reason: a newer stream of the same conversation id
# from the same client address (``OpenConversation.resume``) took the conversation over. The newer
# stream holds it: a client must not resume this one (it would take it back, and the two would fight).
TAKEN_OVER_REASON = "taken_over"
# A call refused because the server is busy says when to come back, in milliseconds, in this
# trailing metadata key (the one gRPC's own retry policy honours).
RETRY_PUSHBACK_TRAILER = "grpc-retry-pushback-ms"

# Behind a proxy that forwards a call's status code and message but drops its trailing metadata
# (Ray Serve's gRPC proxy, 2.60: measured, docs/deploy-ray.md), the server also writes its text
# trailers (the three keys above) at the end of the status message, after this marker, as a URL
# query, and closes it with ")": "no turn for 900 s; the conversation was closed (affect-trailers:
# affect-reason=idle)". A client reads each key from the trailing metadata, else from there, and
# shows the message without it. Binary trailers (``grpc-status-details-bin``) are not carried.
TRAILERS_IN_MESSAGE = " (affect-trailers: "
_QUERY = re.compile(r"[A-Za-z0-9._~%+&=-]*")  # what urlencode writes


def message_with_trailers(message: str, trailers: Iterable[tuple[str, str | bytes]]) -> str:
    """``message`` with the text ``trailers`` after ``TRAILERS_IN_MESSAGE``; unchanged when there are none."""
    text = [(key, value) for key, value in trailers if isinstance(value, str)]
    return f"{message}{TRAILERS_IN_MESSAGE}{urlencode(text)})" if text else message


def trailers_in_message(message: str) -> tuple[str, dict[str, str]]:
    """The message without the trailers ``message_with_trailers`` wrote at its end, and those
    trailers by key; ``(message, {})`` when it carries none."""
    head, marker, tail = message.rpartition(TRAILERS_IN_MESSAGE)
    if not marker or not tail.endswith(")") or not _QUERY.fullmatch(tail[:-1]):
        return message, {}
    return head, dict(parse_qsl(tail[:-1], keep_blank_values=True))


def is_turn_field(field: str) -> bool:
    """Whether a refusal naming ``field`` refused a turn (what ``TurnError`` reports in a
    conversation), rather than a conversation's or a call's options."""
    return field == "turn" or field.startswith("turn.")


# ---------------------------------------------------------------- media given as a file path

# A str given as media is a file path. Web apps often hold a picture or a recording as base64 or a
# data: URI instead, so a message about a path that cannot be read must not quote it: it may be a
# face or a voice. A path is named by its file name only, and only when the string is plausibly a
# path (at most MAX_SHOWN_PATH_CHARS characters, no control character, no "data:" prefix); any
# other string by its length.
MAX_SHOWN_PATH_CHARS = 255
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EINVAL, errno.ELOOP)


def shown_name(path: str | PathLike[str]) -> str | None:
    """How a message about a file's content may name the file a caller gave: its file name
    (``call.mp4 is an MP4 video``), or None when the string is not plausibly a path (too long, a
    control character that could forge a line of a log or a CSV, a data: URI)."""
    text = os.fspath(path)
    if (len(text) > MAX_SHOWN_PATH_CHARS or text[:5].lower() == "data:"
            or any(unicodedata.category(char) in _NOT_IN_IDS for char in text)):
        return None
    return PurePath(text).name or text


def shown_path(path: str | PathLike[str]) -> str | None:
    """How a message about reaching a file may name it: ``shown_name`` quoted (``'face.jpg'``), or None."""
    name = shown_name(path)
    return None if name is None else repr(name)


def file_size(path: str | PathLike[str]) -> tuple[int, int]:
    """``(size, 0)`` of the file at ``path``, or ``(0, errno)`` saying why there is none: EISDIR
    for a folder, ENOENT for nothing there, an OSError's (ENAMETOOLONG for base64 given as a
    path, EACCES), EINVAL for a NUL character. It never raises, so the caller refuses with
    ``file_path_problem`` outside any handler: no OSError quoting the string rides along."""
    try:
        p = Path(path)
        if p.is_file():
            return p.stat().st_size, 0
        return 0, errno.EISDIR if p.is_dir() else errno.ENOENT
    except OSError as exc:
        return 0, exc.errno or errno.EIO
    except ValueError:
        return 0, errno.EINVAL


def file_path_problem(path: str | PathLike[str], field: str, error: int) -> str:
    """Why the file path given as ``field`` cannot be read, ``error`` being the errno of what
    checking or opening it met (``errno.EISDIR`` for a folder, ``errno.ENOENT`` for none, an
    ``OSError``'s; ``errno.EINVAL`` for a NUL character), naming it as ``shown_path`` does."""
    shown = shown_path(path)
    if shown is None:  # base64, a data: URI, text, or a path too long to quote: never quoted
        length = len(os.fspath(path))
        if error == errno.EISDIR:
            return f"{field}: the path given ({length:,} characters) is a directory, not a file"
        if error not in _MISSING:
            return f"{field}: the file at the path given ({length:,} characters) cannot be read: {os.strerror(error)}"
        return (f"{field}: a string is a file path; this one is not a file that exists ({length:,} "
                "characters; media given as base64 or a data: URI must be decoded to bytes first)")
    if error == errno.EISDIR:
        return f"{field}: {shown} is a directory, not a file"
    if error in _MISSING:
        return f"{field}: no such file {shown}"
    return f"{field}: cannot read {shown}: {os.strerror(error)}"


def checked_file_size(path: str | PathLike[str], field: str) -> tuple[int, str | None]:
    """``(size, None)`` of the file at ``path`` given as ``field``, or ``(0, why there is none)``
    as ``file_path_problem`` words it (``file_size``'s errno: a folder, nothing there, base64
    given as a path). It never raises: the caller refuses outside any handler, its own error type
    for ``field``. A file it may not read passes (``is_file`` needs no read permission):
    ``read_checked_file`` refuses it where it is read."""
    size, error = file_size(path)
    return (size, None) if not error else (0, file_path_problem(path, field, error))


def read_checked_file(path: str | PathLike[str], field: str, limit: int = -1) -> tuple[bytes, str | None]:
    """``(bytes, None)``: the file's bytes (its first ``limit``, or all), or ``(b"", why not)``
    as ``file_path_problem`` words the OSError met opening or reading it (a file its reader may
    not read, one gone since ``checked_file_size``). It never raises: the caller refuses outside
    any handler, so no OSError quoting the path rides along as the refusal's context."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit), None
    except OSError as exc:
        error = exc.errno or errno.EIO
    except ValueError:  # a NUL character (checked_file_size refuses it first)
        error = errno.EINVAL
    return b"", file_path_problem(path, field, error)


# ---------------------------------------------------------------- audio given as samples

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 48_000  # Hz, raw samples and files alike (affect.proto)
MAX_AUDIO_CHANNELS = 8  # raw samples and files alike
AUDIO_ARRAY_DTYPES = ("int16", "float32", "float64")  # 16-bit PCM, or float samples in [-1, 1]


def sample_rate_problem(sample_rate: object, field: str = "sample_rate") -> str | None:
    """Why ``sample_rate`` may not be the rate of audio samples, or None when it may: a whole
    number of Hz (never rounded: 16000.5 is refused), from ``MIN_SAMPLE_RATE`` to ``MAX_SAMPLE_RATE``."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        return f"{field} must be a number of samples per second, got {type(sample_rate).__name__}"
    value = float(sample_rate)
    if not math.isfinite(value) or value != int(value):
        return f"{field} must be a whole number of Hz, got {sample_rate!r}"
    rate = int(value)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        return f"{field} is {rate} Hz; supported rates are {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
    return None


def file_bytes_with_rate_problem(audio: object, sample_rate: object, raw_pcm: str, field: str = "audio") -> str | None:
    """Why ``audio`` may not be given with ``sample_rate``, or None when it may: bytes are read as
    an audio file, which carries its own rate; bytes given with a rate are raw samples (a voice
    bot's RTP payload), which would be refused later as a file that cannot be read. ``raw_pcm``: how the caller's
    API takes raw 16-bit PCM (the client's ``Audio.pcm16``, the library's int16 array)."""
    if sample_rate is None or not isinstance(audio, (bytes, bytearray, memoryview)):
        return None
    return (f"{field}: bytes are read as an audio file (WAV/FLAC/OGG), which carries its own rate, so they "
            f"take no sample_rate=; raw 16-bit PCM is {raw_pcm}; μ-law (telephone audio) is a WAV with the "
            "ULAW subtype, or samples decoded to int16 first")


def audio_budget_problem(frames: int, channels: int, rate: int, *, max_seconds: float, max_values: float, field: str,
                         name: str | None = None) -> str | None:
    """Why audio of ``frames`` x ``channels`` at ``rate`` Hz is over a budget, or None: longer than
    ``max_seconds``, or more than ``max_values`` samples x channels (its decoded size). Read from a
    header or an array's shape, before anything is decoded; ``name``: the file's, in the message."""
    what = f"{field}: {name}" if name else field
    if frames / rate > max_seconds:
        shown, limit = _seconds_over(frames / rate, max_seconds)
        return f"{what} lasts {shown} s; the limit is {limit} s (split long recordings into turns)"
    if frames * channels > max_values:
        return (f"{what} holds {frames:,} frames x {channels} channels = {frames * channels:,} samples; "
                f"the limit is {max_values:,} per turn")
    return None


def _seconds_over(seconds: float, limit: float) -> tuple[str, str]:
    """``seconds`` and ``limit`` as a message shows them: the limit as set (3, 2.5), the length to
    a tenth below 100 s and with more decimals (up to 3) where it would read as the limit
    ("lasts 3.5 s; the limit is 3 s", not "lasts 4 s"; "3.04 s", not "3.0 s")."""
    bound = f"{limit:,.3f}".rstrip("0").rstrip(".")
    digits = max(len(bound.partition(".")[2]), 1 if seconds < 100 else 0)
    while (shown := f"{seconds:,.{digits}f}") == f"{limit:,.{digits}f}" and digits < 3:
        digits += 1
    trimmed = shown.rstrip("0").rstrip(".") if "." in shown else shown  # 4.0 s as 4 s, 3.000 s kept beside 3 s
    return (trimmed if trimmed != bound else shown), bound


def audio_dtype_problem(dtype: str, field: str = "audio") -> str | None:
    """Why samples of ``dtype`` (numpy's name, ``str(array.dtype)``) may not be audio, or None."""
    if dtype not in AUDIO_ARRAY_DTYPES:
        return f"{field} must hold 16-bit PCM (int16) or float samples, got dtype {dtype}"
    return None


def audio_layout(shape: tuple[int, ...]) -> tuple[int, int, bool] | None:
    """How samples of this shape are read: ``(frames, channels, channels_first)``, or None when
    they cannot be. ``[frames]`` is mono; two dimensions are ``[frames, channels]`` when the
    second is at most ``MAX_AUDIO_CHANNELS`` and no longer than the first, else ``[channels,
    frames]`` when the first is at most ``MAX_AUDIO_CHANNELS``."""
    if len(shape) == 1:
        return shape[0], 1, False
    if len(shape) != 2:
        return None
    rows, cols = shape
    if cols <= MAX_AUDIO_CHANNELS and cols <= rows:
        return rows, cols, False
    if rows <= MAX_AUDIO_CHANNELS:
        return cols, rows, True
    return None


# Float samples live in [-1, 1]; a little overshoot happens after filtering, much more means
# integer PCM was passed as floats, which would be read as extreme clipping.
MAX_FLOAT_PEAK = 4.0


def samples_peak_problem(peak: float, field: str = "audio") -> str | None:
    """Why samples may not be audio for their values, or None: ``peak`` is the largest magnitude
    of their mono mix (channels averaged, in float32; int16 PCM scaled by 1/32768), which NaN or
    infinite samples make NaN or infinite, and which may be at most ``MAX_FLOAT_PEAK``."""
    if not math.isfinite(peak):
        return f"{field} contains NaN or infinite samples"
    if peak > MAX_FLOAT_PEAK:
        return f"{field} has float samples up to {peak:.3g}; float audio must be in [-1, 1] (pass int16 PCM as int16)"
    return None


def audio_shape_problem(shape: tuple[int, ...], field: str = "audio") -> str | None:
    """Why samples of this shape may not be audio (``audio_layout``), or None: no empty one, none
    whose channels (its shorter dimension) are more than ``MAX_AUDIO_CHANNELS``."""
    if len(shape) not in (1, 2):
        return f"{field} has {len(shape)} dimensions; expected 1 (mono) or 2 (channels)"
    if min(shape) == 0:
        return f"{field} is empty"
    if audio_layout(shape) is None:  # two dimensions, both longer than a channel count may be
        return (f"{field} has shape {shape}: {min(shape)} channels; the limit is {MAX_AUDIO_CHANNELS} "
                "(expected [frames], [frames, channels] or [channels, frames])")
    return None


# ---------------------------------------------------------------- conversation options

def escalation_anger_problem(level: object, field: str = "escalation_anger") -> str | None:
    """Why ``level`` may not be the forecast P(anger) that raises ``escalation_risk``, or None when
    it may: a number in (0, 1] (not a bool; NaN is refused)."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level <= 1:
        return f"{field} must be in (0, 1], got {level!r}"
    return None


# ---------------------------------------------------------------- text priors

# The contract's emotions, in the order of every probability vector (``affect.labels.Emotion``,
# the client's ``Emotion``; tests/test_rules.py keeps the three alike).
EMOTION_NAMES = ("neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise")
# The text priors a name gives (``affect.text.prior.PRIOR_PRESETS``, kept alike by tests/test_rules.py).
PRIOR_PRESET_NAMES = ("trained", "conversational", "uniform")
MAX_PRIOR_CHARS = 512  # a prior written out (a flag, a variable, the wire): seven emotion=weight pairs take about 100


def prior_preset_problem(name: str) -> str | None:
    """Why ``name`` is not a text prior's preset, or None when it is."""
    if name not in PRIOR_PRESET_NAMES:
        return f"unknown text prior {name!r}; presets: {', '.join(PRIOR_PRESET_NAMES)}, or a mapping of emotions"
    return None


def prior_weights_problem(weights: Mapping[str, object]) -> str | None:
    """Why ``weights`` (emotion name to weight) may not be a text prior, or None when they may: each
    name an emotion (``EMOTION_NAMES``), each weight a finite number of 0 or more
    (``prior_weight_problem``), some weight positive and all of them adding up to a finite total."""
    for name, weight in weights.items():
        if name not in EMOTION_NAMES:
            return f"text prior names {name!r}, which is not an emotion; known: {', '.join(EMOTION_NAMES)}"
        if problem := prior_weight_problem(name, weight):
            return problem
    total = sum(float(w) for w in weights.values())  # type: ignore[arg-type]  # each read by prior_weight_problem
    if not total > 0:
        return "text prior must give some emotion a positive weight"
    if not math.isfinite(total):
        return "text prior weights are too large to add up; give relative weights such as 0.8 and 0.2"
    return None


def parse_text_prior(text: str) -> str | dict[str, float]:
    """The text prior ``text`` writes (a flag, a variable, ``ConversationOptions.text_prior``): a
    preset's name (``PRIOR_PRESET_NAMES``), or the weights by emotion of comma-separated
    ``emotion=weight`` pairs (``neutral=0.8,anger=0.2``), each emotion once, by
    ``prior_weights_problem``'s rule; at most ``MAX_PRIOR_CHARS`` characters. Raises ``ValueError``
    saying what is wrong (``text_prior_problem``: the message)."""
    if len(text) > MAX_PRIOR_CHARS:  # no list of thousands of pairs is parsed
        raise ValueError(f"text prior is {len(text)} characters long; at most {MAX_PRIOR_CHARS}")
    text = text.strip()
    if "=" not in text:
        if problem := prior_preset_problem(text):
            raise ValueError(problem)
        return text
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name in weights:
            raise ValueError(f"text prior names {name!r} twice")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"text prior: {part.strip()!r} is not emotion=weight") from None
    if problem := prior_weights_problem(weights):
        raise ValueError(problem)
    return weights


def text_prior_problem(text: str) -> str | None:
    """Why ``text`` may not be a text prior as written (``parse_text_prior``), or None when it may."""
    try:
        parse_text_prior(text)
    except ValueError as exc:
        return str(exc)
    return None


def prior_weight_problem(emotion: str, weight: object) -> str | None:
    """Why ``weight`` may not be ``emotion``'s weight in a text prior, or None when it may: a
    finite number, 0 or more (weights are relative: they need not add up to 1)."""
    try:
        value = float(weight)  # type: ignore[arg-type]  # anything float() reads, as the library took it
    except (TypeError, ValueError):
        return f"text prior for {emotion} must be a finite number >= 0, got {weight!r}"
    if not 0 <= value < math.inf:
        return f"text prior for {emotion} must be a finite number >= 0, got {weight!r}"
    return None

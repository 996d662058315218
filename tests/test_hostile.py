"""A hostile client against a real server on loopback (its own process, all three models).

Each attack that once took the service down (issue 18) is replayed: it must be answered
within seconds with the right status and field, the server's memory must not grow by more
than 500 MB, and a bystander conversation must keep getting its answers meanwhile. The
conversion from the wire to a turn is fuzzed with hypothesis: whatever the message, it either
becomes a turn or is refused with ``InvalidInputError`` naming a field, never anything else.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affect import InvalidInputError
from affect_client import AffectClient
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc
from tests._serving import ServerProcess
from tests._wire import field as wire_field

MAX_GROWTH_MB = 500
LOG_ID_KEY = "a deployment's own secret"
HEAP_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
ANSWER_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def hostile_server():
    server = ServerProcess("--max-turns-per-second", "1000", "--log-level", "info", "--log-id-key", LOG_ID_KEY)
    try:
        with AffectClient(server.target) as client:  # warm up every encoder once
            client.analyze("warming up")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def speech_clip(data_root) -> tuple[np.ndarray, int]:
    path = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[40]
    samples, rate = sf.read(str(path), dtype="float32")
    return samples, rate


@dataclass
class Bystander:
    """A conversation that sends text turns back to back while an attack runs."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def bystander(target: str):
    record, stop = Bystander(), threading.Event()

    def run() -> None:
        try:
            with AffectClient(target, turn_timeout=60) as client, client.conversation() as conversation:
                i = 0
                while not stop.is_set():
                    started = time.perf_counter()
                    conversation.send(f"Just checking on my order again, attempt {i}.", speaker="bystander")
                    record.latencies.append(time.perf_counter() - started)
                    i += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            record.errors.append(repr(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.3)
    try:
        yield record
    finally:
        stop.set()
        thread.join(90)


def converse_one(target: str, turn: pb.Turn, timeout: float = 60) -> tuple[pb.ConverseResponse, float]:
    """Open a conversation, send one raw turn, return its answer and how long it took."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 * 2**20)]) as channel:
        stub = pb_grpc.AffectServiceStub(channel)
        started = time.perf_counter()
        responses = list(stub.Converse(iter([pb.ConverseRequest(open=pb.OpenConversation()),
                                             pb.ConverseRequest(turn=turn)]), timeout=timeout))
        return responses[1], time.perf_counter() - started


# ---------------------------------------------------------------------------- payloads

def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def encoded_audio(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def flac_claiming(rate: int, channels: int, seconds: float) -> bytes:
    """A real one-second silent FLAC whose STREAMINFO claims ``rate``, ``channels`` and
    ``seconds``: what the header says is all the server may look at before decoding."""
    data = bytearray(encoded_audio(np.zeros((8000, channels), np.float32), 8000, "FLAC"))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    info = 8  # STREAMINFO body
    total = int(rate * seconds)
    packed = int.from_bytes(data[info + 10: info + 18], "big")
    bits_per_sample = (packed >> 36) & 0x1F
    packed = (rate << 44) | ((channels - 1) << 41) | (bits_per_sample << 36) | total
    data[info + 10: info + 18] = packed.to_bytes(8, "big")
    return bytes(data)


def wav_with_data_length(samples: np.ndarray, rate: int, length: int) -> bytes:
    wav = bytearray(encoded_audio(samples, rate, "WAV", "PCM_16"))
    pos = wav.index(b"data")
    wav[pos + 4: pos + 8] = struct.pack("<I", length)
    return bytes(wav)


def png_of(width: int, height: int) -> bytes:
    import cv2

    return cv2.imencode(".png", np.zeros((height, width), np.uint8))[1].tobytes()


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def _eob_run_scan(blocks: int) -> bytes:
    """A progressive AC scan of one gray component that ends every block by end-of-band runs of
    32767 (the Huffman table below gives the run symbol the code "0"): a few bytes a scan."""
    bits = "".join("0" + "1" * 14 for _ in range(-(-blocks // 32767)))
    bits += "1" * (-len(bits) % 8)
    data = bytearray()
    for i in range(0, len(bits), 8):
        data.append(int(bits[i : i + 8], 2))
        if data[-1] == 0xFF:
            data.append(0)  # stuffed
    return _jpeg_segment(0xDA, b"\x01\x01\x00\x01\x01\x00") + bytes(data)


def progressive_jpeg(width: int, height: int, scans: int, dc_scan: bool = True) -> bytes:
    """A gray progressive JPEG of ``scans`` AC scans: decoding costs a pass over every block per
    scan, so its CPU follows the scans (about 0.3 ms a scan at 2048x2048), not its pixels."""
    blocks = -(-width // 8) * -(-height // 8)
    head = (_jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
            + _jpeg_segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
            + _jpeg_segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
            + _jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\xe0"))
    dc = _jpeg_segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + bytes(-(-blocks // 8)) if dc_scan else b""
    return b"\xff\xd8" + head + dc + _eob_run_scan(blocks) * scans + b"\xff\xd9"


def jpeg_hiding_its_frame(width: int, height: int) -> bytes:
    """A JPEG whose first frame header (``width`` x ``height``) sits behind the bytes 0xFF 0x00:
    a reader that takes those for a segment skips it and finds the 16x16 frame after it, while
    libjpeg, for which 0xFF 0x00 is a stuffed byte, decodes the big one."""
    big = progressive_jpeg(width, height, 1, dc_scan=False)[2:]
    small = _jpeg_segment(0xC0, struct.pack(">BHHB", 8, 16, 16, 1) + b"\x01\x11\x00")
    return b"\xff\xd8" + b"\xff\x00" + struct.pack(">H", len(big) + 2) + big + small


def attacks(clip: np.ndarray, rate: int) -> list[tuple[str, pb.Turn, str, str]]:
    """(name, turn, expected status, expected field) of each attack refused."""
    raw = pb.Audio
    return [
        ("pcm-48001-hz", pb.Turn(audio=raw(data=pcm(clip), encoding=pb.PCM_S16LE, sample_rate_hz=48_001)),
         "INVALID_ARGUMENT", "turn.audio.sample_rate_hz"),
        ("pcm-192000-hz", pb.Turn(audio=raw(data=pcm(clip), encoding=pb.PCM_S16LE, sample_rate_hz=192_000)),
         "INVALID_ARGUMENT", "turn.audio.sample_rate_hz"),
        ("flac-192k-8ch-599s", pb.Turn(audio=raw(data=flac_claiming(192_000, 8, 599), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("flac-48k-8ch-599s", pb.Turn(audio=raw(data=flac_claiming(48_000, 8, 599), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("flac-48k-8ch-100s", pb.Turn(audio=raw(data=flac_claiming(48_000, 8, 100), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("pcm-too-long", pb.Turn(audio=raw(data=bytes(2 * 16_000 * 130), encoding=pb.PCM_S16LE, sample_rate_hz=16_000)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("mp3", pb.Turn(audio=raw(data=encoded_audio(clip, rate, "MP3"), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("wav-streamed-length", pb.Turn(audio=raw(data=wav_with_data_length(clip, rate, 0xFFFFFFFF), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("wav-length-lies", pb.Turn(audio=raw(data=wav_with_data_length(clip, rate, 10 * len(clip)), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("garbage-file", pb.Turn(audio=raw(data=b"\x00\x01garbage" * 1000, encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("8-strips-16384x1", pb.Turn(images=[pb.Image(data=bytes(16_384), encoding=pb.RAW_GRAY8, width=16_384, height=1)] * 8),
         "INVALID_ARGUMENT", "turn.images[0]"),
        ("8-pngs-4096x4096", pb.Turn(images=[pb.Image(data=png_of(4096, 4096), encoding=pb.ENCODED)] * 8),
         "INVALID_ARGUMENT", "turn.images"),
        ("png-20000x20000-header", pb.Turn(images=[pb.Image(data=_png_header(20_000, 20_000), encoding=pb.ENCODED)]),
         "INVALID_ARGUMENT", "turn.images[0]"),
        ("text-over-limit", pb.Turn(text=b"x" * 12_000), "INVALID_ARGUMENT", "turn.text"),
        ("flac-streamed-without-length", pb.Turn(audio=raw(data=flac_claiming(8000, 1, 0), encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("pcm-1-hz", pb.Turn(audio=raw(data=pcm(clip), encoding=pb.PCM_S16LE, sample_rate_hz=1)),
         "INVALID_ARGUMENT", "turn.audio.sample_rate_hz"),
        ("jpeg-hiding-a-12000x12000-frame", pb.Turn(images=[pb.Image(data=jpeg_hiding_its_frame(12_000, 12_000),
                                                                     encoding=pb.ENCODED)]),
         "INVALID_ARGUMENT", "turn.images[0]"),
        ("jpeg-2048x2048-of-20000-scans", pb.Turn(images=[pb.Image(data=progressive_jpeg(2048, 2048, 20_000),
                                                                   encoding=pb.ENCODED)]),
         "INVALID_ARGUMENT", "turn.images[0].data"),
        ("ogg-with-8mb-of-page-lookalikes", pb.Turn(audio=raw(data=encoded_audio(clip, rate, "OGG") + b"OggS" * 2**21,
                                                              encoding=pb.AUDIO_FILE)),
         "INVALID_ARGUMENT", "turn.audio.data"),
        ("200000-empty-images", pb.Turn(images=[pb.Image()] * 200_000), "INVALID_ARGUMENT", "turn.images"),
    ]


def _png_header(width: int, height: int) -> bytes:
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


# ---------------------------------------------------------------------------- tests

def test_odd_sample_rates_are_resampled_cheaply(hostile_server, speech_clip):
    clip, rate = speech_clip
    hostile_server.reset_peak()
    before = hostile_server.rss_mb()
    turns = {
        "pcm-16001": pb.Turn(audio=pb.Audio(data=pcm(clip), encoding=pb.PCM_S16LE, sample_rate_hz=16_001)),
        "pcm-47999": pb.Turn(audio=pb.Audio(data=pcm(clip), encoding=pb.PCM_S16LE, sample_rate_hz=47_999)),
        "flac-16001": pb.Turn(audio=pb.Audio(data=encoded_audio(clip, 16_001, "FLAC"), encoding=pb.AUDIO_FILE)),
        "wav-24414": pb.Turn(audio=pb.Audio(data=encoded_audio(clip, 24_414, "WAV", "PCM_16"), encoding=pb.AUDIO_FILE)),
    }
    for name, turn in turns.items():
        answer, elapsed = converse_one(hostile_server.target, turn)
        assert answer.WhichOneof("kind") == "result", (name, answer)
        assert elapsed < ANSWER_WITHIN_S, (name, elapsed)
    assert hostile_server.peak_rss_mb() - before < MAX_GROWTH_MB


def test_attacks_are_refused_quickly_with_the_field_while_others_are_served(hostile_server, speech_clip):
    clip, rate = speech_clip
    hostile_server.reset_peak()
    before = hostile_server.rss_mb()
    with bystander(hostile_server.target) as other:
        for name, turn, code, wire_field in attacks(clip, rate):
            answer, elapsed = converse_one(hostile_server.target, turn)
            assert answer.WhichOneof("kind") == "error", (name, answer)
            assert grpc.StatusCode[code].value[0] == answer.error.code, (name, answer.error)
            assert answer.error.field == wire_field, (name, answer.error)
            assert not HEAP_ADDRESS.search(answer.error.message), (name, answer.error.message)
            assert not re.search(r"\d{1,3}(,\d{3}){4,}", answer.error.message), (name, answer.error.message)  # no absurd figure
            assert elapsed < ANSWER_WITHIN_S, (name, elapsed)
    assert hostile_server.peak_rss_mb() - before < MAX_GROWTH_MB, hostile_server.peak_rss_mb() - before
    assert not other.errors, other.errors
    assert other.latencies and max(other.latencies) < ANSWER_WITHIN_S, other.latencies


def test_an_unreadable_message_is_a_bad_turn_and_the_conversation_goes_on(hostile_server):
    """Bytes that do not parse as a ConverseRequest (here a speaker name that is not UTF-8) once
    ended the whole stream with UNKNOWN; now that message alone is refused, with its status."""
    good = pb.ConverseRequest(turn=pb.Turn(speaker="ab", text=b"Where is my parcel?")).SerializeToString()
    bad = good.replace(b"ab", b"\xff\xfe")
    with pytest.raises(Exception, match="(?i)utf-8|parse"):
        pb.ConverseRequest.FromString(bad)
    opening = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()
    with grpc.insecure_channel(hostile_server.target) as channel:
        converse = channel.stream_stream(f"/{pb.DESCRIPTOR.services_by_name['AffectService'].full_name}/Converse",
                                         request_serializer=None, response_deserializer=pb.ConverseResponse.FromString)
        answers = list(converse(iter([opening, bad, good]), timeout=60))
        assert [a.WhichOneof("kind") for a in answers] == ["opened", "error", "result"], answers
        assert answers[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and answers[1].error.field == "turn"
        with pytest.raises(grpc.RpcError) as refused:  # an unreadable first message ends the call, with its status
            list(converse(iter([bad]), timeout=60))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value


# ConverseRequest.turn holding 7.8 million empty images: 15 MiB, about 15 KB gzip-compressed.
# Parsed, it cost about 450 MB of memory before its images were counted.
IMAGE_BOMB = wire_field(2, wire_field(5, b"") * ((15 << 20) // 2))


def test_a_turn_of_millions_of_empty_images_is_refused_unread(hostile_server):
    """Eight at once, uncompressed: each refused with the image count's status, field and words,
    read only as far as the ninth image (before, 1.25 -> 4.7 GB and 8 s)."""
    opening = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()

    async def one(channel: grpc.aio.Channel) -> pb.ConverseResponse:
        call = channel.stream_stream("/affect.v1.AffectService/Converse", request_serializer=lambda b: b,
                                     response_deserializer=pb.ConverseResponse.FromString)(timeout=60)
        await call.write(opening)
        await call.read()
        await call.write(IMAGE_BOMB)
        answer = await call.read()
        await call.done_writing()
        return answer

    async def eight() -> list[pb.ConverseResponse]:
        async with grpc.aio.insecure_channel(hostile_server.target,
                                             options=[("grpc.max_send_message_length", 32 * 2**20)]) as channel:
            return await asyncio.gather(*(one(channel) for _ in range(8)))

    hostile_server.reset_peak()
    before = hostile_server.rss_mb()
    started = time.perf_counter()
    answers = asyncio.run(eight())
    elapsed = time.perf_counter() - started
    growth = hostile_server.peak_rss_mb() - before
    for answer in answers:
        assert answer.WhichOneof("kind") == "error", answer
        assert answer.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert answer.error.field == "turn.images"
        assert answer.error.message.startswith("turn.images: a turn may carry at most 8 images"), answer.error.message
    assert elapsed < ANSWER_WITHIN_S, elapsed
    assert growth < 8 * 15 * 1.5 + 100, growth  # the requests' own bytes, not 28 times them


def test_a_compressed_request_is_refused_before_it_is_inflated(hostile_server):
    """The bomb gzip-compressed is about 15 KB on the wire: gRPC refuses any compressed request
    itself (only identity is enabled), the call ending with UNIMPLEMENTED. An asyncio client's
    write may race that refusal and fail on its own side, INTERNAL "Internal error from Core"
    (about a third of the calls here); the blocking client always reports the server's status."""
    messages = (pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString(), IMAGE_BOMB)
    disabled = (grpc.StatusCode.UNIMPLEMENTED, "Compression algorithm 'gzip' is disabled.")
    for message in messages:
        with grpc.insecure_channel(hostile_server.target, compression=grpc.Compression.Gzip) as channel:
            converse = channel.stream_stream("/affect.v1.AffectService/Converse", request_serializer=lambda b: b,
                                             response_deserializer=pb.ConverseResponse.FromString)
            with pytest.raises(grpc.RpcError) as refused:
                list(converse(iter([message]), timeout=60))
        assert (refused.value.code(), refused.value.details()) == disabled, refused.value

    async def compressed(message: bytes) -> tuple[grpc.StatusCode, str | None]:
        async with grpc.aio.insecure_channel(hostile_server.target, compression=grpc.Compression.Gzip) as channel:
            call = channel.stream_stream("/affect.v1.AffectService/Converse", request_serializer=lambda b: b,
                                         response_deserializer=pb.ConverseResponse.FromString)(timeout=60)
            with pytest.raises(grpc.aio.AioRpcError):
                await call.write(message)
                await call.read()
            return await call.code(), await call.details()

    seen = [asyncio.run(compressed(message)) for message in messages * 5]
    assert set(seen) <= {disabled, (grpc.StatusCode.INTERNAL, "Internal error from Core")}, seen
    assert disabled in seen, seen
    answer, _ = converse_one(hostile_server.target, pb.Turn(text=b"Still there?"))  # uncompressed: served
    assert answer.WhichOneof("kind") == "result", answer


def test_a_flood_of_big_analyze_calls_is_admitted_or_refused_with_a_hint(hostile_server):
    """100 concurrent 15 MB Analyze calls (82 s of float audio each, inside every per-turn
    limit): each is answered or refused with RESOURCE_EXHAUSTED and a retry hint; bodies of
    refused calls are not read, nor those of calls waiting for the client's slots (gRPC holds a
    flow-control window of each), so memory stays bounded; a conversation is served meanwhile."""
    samples = (0.01 * np.random.default_rng(0).standard_normal(int(15 * 2**20 / 4))).astype("<f4")
    request = pb.AnalyzeRequest(turn=pb.Turn(audio=pb.Audio(data=samples.tobytes(), encoding=pb.FLOAT32_LE,
                                                            sample_rate_hz=48_000)))
    payload = request.SerializeToString()

    async def flood() -> list[tuple[grpc.StatusCode, str | None]]:
        async with grpc.aio.insecure_channel(hostile_server.target,
                                             options=[("grpc.max_send_message_length", 32 * 2**20)]) as channel:
            call = channel.unary_unary("/affect.v1.AffectService/Analyze", request_serializer=lambda b: b,
                                       response_deserializer=pb.AnalyzeResponse.FromString)

            async def one():
                try:
                    await call(payload, timeout=120)
                    return grpc.StatusCode.OK, None
                except grpc.aio.AioRpcError as error:
                    hint = dict(error.trailing_metadata() or ()).get("grpc-retry-pushback-ms")
                    return error.code(), hint

            return await asyncio.gather(*(one() for _ in range(100)))

    hostile_server.reset_peak()
    before = hostile_server.rss_mb()
    with bystander(hostile_server.target) as other:
        outcomes = asyncio.run(flood())
    codes = [code for code, _ in outcomes]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, set(codes)
    refused = [hint for code, hint in outcomes if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert refused and all(hint is not None and int(hint) > 0 for hint in refused)
    assert hostile_server.peak_rss_mb() - before < MAX_GROWTH_MB, hostile_server.peak_rss_mb() - before
    assert not other.errors, other.errors


def test_the_log_holds_no_content_and_no_forged_lines(hostile_server):
    with grpc.insecure_channel(hostile_server.target) as channel:
        stub = pb_grpc.AffectServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Converse(iter([pb.ConverseRequest(open=pb.OpenConversation(
                conversation_id="x\n2030-01-01 00:00:00 INFO affect.server: FORGED admin logged in"))]), timeout=30))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "open.conversation_id" in refused.value.details()
    converse_one(hostile_server.target, pb.Turn(text=b"my secret account number is 12345678"))
    with grpc.insecure_channel(hostile_server.target) as channel:  # an id the client chose: a phone number
        list(pb_grpc.AffectServiceStub(channel).Converse(iter([pb.ConverseRequest(open=pb.OpenConversation(
            conversation_id="+44 20 7946 0958"))]), timeout=30))
    log = hostile_server.log()
    assert "FORGED" not in log and "12345678" not in log
    import hmac

    assert "7946" not in log
    # its keyed digest only: an unkeyed one is found again by trying phone numbers
    assert "#" + hashlib.sha256(b"+44 20 7946 0958").hexdigest()[:12] not in log
    assert "#" + hmac.new(LOG_ID_KEY.encode(), b"+44 20 7946 0958", hashlib.sha256).hexdigest()[:12] in log


# ---------------------------------------------------------------------------- fuzzing

_ids = st.text(max_size=140)
_audio = st.builds(
    pb.Audio,
    data=st.binary(max_size=4096),
    encoding=st.integers(min_value=0, max_value=5),
    sample_rate_hz=st.sampled_from([0, 1, 7_999, 8_000, 16_000, 16_001, 44_100, 48_000, 48_001, 192_000, 2**32 - 1]),
    channels=st.integers(min_value=0, max_value=9),
)
_image = st.builds(
    pb.Image,
    data=st.one_of(st.binary(max_size=2048), st.sampled_from([b"\x89PNG\r\n\x1a\n" + bytes(16), b"\xff\xd8\xff\xc0"])),
    encoding=st.integers(min_value=0, max_value=6),
    width=st.integers(min_value=0, max_value=70_000),
    height=st.integers(min_value=0, max_value=70_000),
)


@st.composite
def wire_turns(draw) -> pb.Turn:
    turn = pb.Turn(turn_id=draw(_ids), speaker=draw(_ids))
    if draw(st.booleans()):
        turn.text = draw(st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode)))
    if draw(st.booleans()):
        turn.audio.CopyFrom(draw(_audio))
    turn.images.extend(draw(st.lists(_image, max_size=3)))
    return turn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire_turns())
def test_any_wire_turn_becomes_a_turn_or_a_named_refusal(full_analyzer, message):
    from affect_server.budget import measure
    from affect_server.config import ServerConfig
    from affect_server.convert import turn_from_pb

    try:
        measure(message, ServerConfig())
        turn = turn_from_pb(message)
        full_analyzer.conversation().prepare(turn)
    except InvalidInputError as exc:
        assert exc.field and str(exc)
        assert not HEAP_ADDRESS.search(str(exc))


_prior_words = st.sampled_from(["neutral", "anger", "joy", "uniform", "trained", "conversational", "=", ",", "0", "1e308",
                                "-1", "nan", "inf", " ", "0.5", "\x00", "neutral=", "=1"])


_prior_pairs = st.lists(st.tuples(st.sampled_from(["neutral", "anger", "fear", "calm", ""]), st.floats()), max_size=8).map(
    lambda pairs: ",".join(f"{name}={value!r}" for name, value in pairs))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_prior_words, max_size=12).map("".join), _prior_pairs,
                 st.text(min_size=500, max_size=700)))
def test_any_wire_text_prior_becomes_a_prior_or_a_named_refusal(text_encoder, text):
    """``ConversationOptions.text_prior`` as a client may send it: read into a prior the text encoder
    takes, or refused naming the option; never another error."""
    from affect.turn_flow import ConversationOptions
    from affect_server.convert import text_prior_from_pb

    try:
        prior = text_prior_from_pb(pb.ConversationOptions(text_prior=text))
    except InvalidInputError as exc:
        assert exc.field == "options.text_prior" and str(exc).startswith("options.text_prior: ")
        return
    state = text_encoder.turns.new_state(ConversationOptions(text_prior=prior))
    assert prior is None or bool(state.prior_shift.isfinite().all())


def test_a_progressive_jpeg_is_budgeted_for_the_coefficients_its_decoder_holds():
    """A progressive JPEG is decoded only after its last scan, so libjpeg holds every coefficient
    of every component meanwhile (2 bytes a pixel a component: a 4096x4096 CMYK file peaked at
    146 MB against 80 MB budgeted for gray pixels). Admission counts them; baseline files and
    PNGs are decoded a few rows at a time and are budgeted as before."""
    import cv2

    from affect_server.budget import measure
    from affect_server.config import ServerConfig

    colour = np.dstack([np.arange(512 * 640).reshape(512, 640) % 251] * 3).astype(np.uint8)
    baseline = cv2.imencode(".jpg", colour)[1].tobytes()
    progressive = cv2.imencode(".jpg", colour, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    png = cv2.imencode(".png", colour)[1].tobytes()

    def cost(*images: bytes):
        return measure(pb.Turn(images=[pb.Image(data=i, encoding=pb.ENCODED) for i in images]), ServerConfig())

    def overhead(*images: bytes) -> int:
        c = cost(*images)
        return c.decoded_bytes - c.message_bytes - 5 * c.image_pixels

    assert overhead(baseline) == overhead(png) == 0
    assert overhead(progressive) == 2 * 3 * 512 * 640  # three components
    assert overhead(progressive, progressive, baseline) == overhead(progressive)  # decoded one after another

"""Every mix of modalities, through the library and through a real server on loopback."""

from __future__ import annotations

import itertools
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from affect import Analyzer, Turn
from affect_client import AffectClient, Audio, Image, TurnRefusedError
from affect_proto import affect_pb2 as pb
from affect_server.launch import free_port as _free_port
from tests._serving import ServerThread
from tests.conftest import framed_face_png

MODALITIES = ("face", "speech", "text")
MIXES = [m for r in (1, 2, 3) for m in itertools.combinations(MODALITIES, r)]


@pytest.fixture(scope="module")
def face_png(data_root: Path) -> bytes:
    return framed_face_png(data_root, "happy")


@pytest.fixture(scope="module")
def speech_flac(data_root: Path) -> bytes:
    return sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_23").glob("*.flac"))[12].read_bytes()


@pytest.fixture(scope="module")
def server(full_analyzer):
    with ServerThread(full_analyzer, max_turns_per_second=1000, metrics_port=_free_port()) as running:
        yield running


def _scrape(server) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.config.metrics_port}/metrics", timeout=10).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
            if line.startswith("affect_face_")}


def _send(conversation, mix, face_png, speech_flac, text="I can't believe it, this is great!"):
    return conversation.send(
        text if "text" in mix else None,
        speaker="caller",
        audio=Audio(speech_flac, pb.AUDIO_FILE) if "speech" in mix else None,
        images=[Image.encoded(face_png)] if "face" in mix else (),
    )


def test_every_mix_of_modalities_over_grpc(server, face_png, speech_flac):
    with AffectClient(server.target) as client, client.conversation() as conversation:
        for mix in MIXES:
            result = _send(conversation, mix, face_png, speech_flac)
            assert result.present == mix, (mix, result.absent)
            assert set(result.modalities) == set(mix)
            assert sum(result.shares.values()) == pytest.approx(1.0, abs=1e-5)
            assert abs(sum(result.fused.emotions.values()) - 1) < 1e-4
            if "face" in mix:
                (face,) = result.modalities["face"].faces
                assert face.width > 100 and face.detection_score > 0 and face.image_index == 0
            if len(mix) == 1:  # one modality: the answer is that modality's own
                own = result.modalities[mix[0]].affect
                assert result.fused.emotions == pytest.approx(own.emotions, abs=1e-6)


def test_a_missing_modality_never_changes_the_others(server, face_png, speech_flac):
    with AffectClient(server.target) as client:
        alone = {m: client.analyze(**_kwargs((m,), face_png, speech_flac)) for m in MODALITIES}
        together = client.analyze(**_kwargs(MODALITIES, face_png, speech_flac))
    for m in MODALITIES:
        assert together.modalities[m].affect.emotions == pytest.approx(alone[m].modalities[m].affect.emotions, abs=1e-6)


def _kwargs(mix, face_png, speech_flac):
    return {"text": "Honestly I'm fed up." if "text" in mix else None,
            "audio": Audio(speech_flac, pb.AUDIO_FILE) if "speech" in mix else None,
            "images": [Image.encoded(face_png)] if "face" in mix else ()}


def test_raw_pcm_at_8khz_and_raw_pixels(server, speech_flac, face_png):
    samples, rate = sf.read(__import__("io").BytesIO(speech_flac), dtype="int16")
    telephone = cv2.resize(samples.reshape(1, -1).astype(np.float32), (len(samples) * 8000 // rate, 1)).astype(np.int16)[0]
    pixels = cv2.imdecode(np.frombuffer(face_png, np.uint8), cv2.IMREAD_COLOR)
    with AffectClient(server.target) as client:
        result = client.analyze(audio=Audio.pcm16(telephone.tobytes(), 8000), images=[Image.from_array(pixels, color_order="bgr")])
    assert result.present == ("face", "speech")


def test_nothing_to_read_is_said_not_guessed(server):
    silence = np.zeros(16000 * 2, dtype=np.float32)
    blank = np.full((240, 320), 128, np.uint8)
    with AffectClient(server.target) as client, client.conversation() as conversation:
        result = conversation.send(audio=Audio.from_array(silence, 16000), images=[Image.from_array(blank, color_order="bgr")])
        assert result.present == () and result.fused is None and result.emotion is None and result.valence is None
        assert result.absent == {"speech": "no speech detected", "face": "no face detected"}
        assert conversation.send("but text still works").present == ("text",)


def test_audio_too_short_for_an_utterance_is_said_so_over_grpc(server: ServerThread, full_analyzer: Analyzer,
                                                                speech_flac: bytes) -> None:
    """A 0.2 s slice of real speech (a streaming frame, not an utterance) gets the library's reason,
    word for word, through the server and the client; the whole clip is read, 2 s of silence has no speech."""
    samples, rate = sf.read(__import__("io").BytesIO(speech_flac), dtype="int16")
    middle = len(samples) // 2
    short = samples[middle:middle + rate // 5]
    too_short = "audio too short (0.20 s; at least 0.5 s needed: send one utterance per turn)"
    with full_analyzer.conversation() as conversation:
        assert conversation.analyze(audio=short, sample_rate=rate).no_reading_reason == f"speech: {too_short}"
    with AffectClient(server.target) as client, client.conversation() as conversation:
        result = conversation.send(audio=Audio.from_array(short, rate))
        assert result.fused is None and result.absent == {"speech": too_short}
        assert result.no_reading_reason == f"speech: {too_short}"
        assert conversation.send(audio=Audio(speech_flac, pb.AUDIO_FILE)).present == ("speech",)
        silence = conversation.send(audio=Audio.from_array(np.zeros(2 * 16_000, np.float32), 16_000))
        assert silence.absent == {"speech": "no speech detected"}


@pytest.mark.parametrize(
    "turn, field",
    [
        (pb.Turn(audio=pb.Audio(data=b"\x00\x01" * 100)), "turn.audio.encoding"),
        (pb.Turn(audio=pb.Audio(data=b"\x00\x01" * 100, encoding=pb.PCM_S16LE)), "turn.audio.sample_rate_hz"),
        (pb.Turn(audio=pb.Audio(data=b"\x00\x01\x02", encoding=pb.PCM_S16LE, sample_rate_hz=16000)), "turn.audio.data"),
        (pb.Turn(audio=pb.Audio(data=b"RIFF\x00\x00garbage", encoding=pb.AUDIO_FILE)), "turn.audio"),
        (pb.Turn(audio=pb.Audio(data=b"", encoding=pb.PCM_S16LE, sample_rate_hz=16000)), "turn.audio.data"),
        (pb.Turn(audio=pb.Audio(data=b"", encoding=pb.FLOAT32_LE, sample_rate_hz=16000)), "turn.audio.data"),
        (pb.Turn(audio=pb.Audio(data=b"", encoding=pb.AUDIO_FILE)), "turn.audio.data"),
        (pb.Turn(audio=pb.Audio(data=np.full(160, np.nan, "<f4").tobytes(), encoding=pb.FLOAT32_LE, sample_rate_hz=16000)),
         "turn.audio.data"),
        (pb.Turn(images=[pb.Image(data=b"\x89PNG\r\n\x1a\nbroken", encoding=pb.ENCODED)]), "turn.images"),
        (pb.Turn(images=[pb.Image(data=b"\x00" * 10, encoding=pb.RAW_GRAY8, width=4, height=4)]), "turn.images[0].data"),
    ],
)
def test_bad_audio_and_images_are_refused_and_the_stream_goes_on(server, turn, field):
    from affect_client._core import parse_turn_response

    with AffectClient(server.target) as client, client.conversation() as conversation:
        conversation._requests.put(pb.ConverseRequest(turn=turn))
        with pytest.raises(TurnRefusedError) as refused:
            parse_turn_response(conversation._next_response(60))
        assert refused.value.code.name == "INVALID_ARGUMENT" and refused.value.field.startswith(field), refused.value
        assert conversation.send("still answering").present == ("text",)


def test_a_turn_is_refused_for_its_text_before_its_images_are_decoded(full_analyzer):
    """Every modality's cheap checks run before any decoding: undecodable images beside
    too-long text are refused for the text (decoding them first would name the images)."""
    from affect import InputTooLargeError
    from affect.limits import MAX_TEXT_CHARS

    with full_analyzer.conversation() as conversation:
        with pytest.raises(InputTooLargeError) as refused:
            conversation.analyze(Turn(text="a" * (MAX_TEXT_CHARS + 1), images=[b"not an image"] * 3))
        assert refused.value.field == "text"
        with pytest.raises(Exception) as decoded:  # the same images alone are decoded, and refused for themselves
            conversation.analyze(Turn(text="fine", images=[b"not an image"] * 3))
        assert "image" in str(getattr(decoded.value, "field", "")), decoded.value


def test_library_turn_with_all_modalities(full_analyzer, face_png, speech_flac):
    with full_analyzer.conversation() as conversation:
        result = conversation.analyze(Turn(text="What a lovely surprise!", audio=speech_flac, image=face_png, speaker="A"))
    assert [m.value for m in result.present] == ["face", "speech", "text"]
    assert len(result.faces) == 1 and result.to_dict()["faces"][0]["box"][2] > 100


def test_a_conversations_frames_are_searched_around_its_face_and_the_metrics_say_so(server, face_png):
    """Through the server: the first frame of a conversation is a full search, the next ones look
    only around the face it follows (the service's default); Prometheus counts both and the windows."""
    before = _scrape(server)
    with AffectClient(server.target) as client, client.conversation() as conversation:
        answers = [conversation.send(images=[Image.encoded(face_png)]) for _ in range(3)]
    after = _scrape(server)
    grew = {k: after[k] - before.get(k, 0.0) for k in after}
    assert all(len(a.faces) == 1 for a in answers) and len({a.faces[0].track_id for a in answers}) == 1
    assert grew['affect_face_searches_total{kind="full"}'] == 1
    assert grew['affect_face_searches_total{kind="focused"}'] == 2
    full_windows = server.analyzer.face.detector.windows(*cv2.imdecode(np.frombuffer(face_png, np.uint8), 0).shape)
    assert grew["affect_face_detector_windows_total"] < full_windows + 2 * full_windows / 4


def _audio_file(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype="PCM_16" if fmt == "WAV" else None)
    return buffer.getvalue()


def test_wire_refusals_name_their_field_once_and_say_what_is_wrong(full_analyzer, face_png):
    """What the audit read: "turn.images[0].data: turn.images[0]: image is not ..." (the field
    three times), a truncated JPEG under "turn.images" where the others say "turn.images[0]", a
    0x0 picture asked for its "width and height", "the audio bytes is MP3 audio", an empty WAV
    called a streamed one, and 3.5 s of audio that "lasts 4 s; the limit is 3 s"."""
    from affect_client._core import parse_turn_response

    jpeg = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(face_png, np.uint8), cv2.IMREAD_GRAYSCALE))[1].tobytes()
    clip = (np.random.default_rng(0).standard_normal(56_000) * 0.1).astype(np.float32)  # 3.5 s at 16 kHz
    cases = [
        (pb.Turn(images=[pb.Image(data=b"GIF89a\x01\x00\x01\x00 a GIF", encoding=pb.ENCODED)]),
         "turn.images[0].data", "turn.images[0].data is a GIF image, not a JPEG, PNG, BMP or WebP file"),
        (pb.Turn(images=[pb.Image(data=face_png, encoding=pb.ENCODED),
                         pb.Image(data=jpeg[: len(jpeg) // 2], encoding=pb.ENCODED)]),
         "turn.images[1]", "turn.images[1] could not be decoded (corrupt or truncated)"),
        (pb.Turn(images=[pb.Image(data=b"", encoding=pb.RAW_GRAY8, width=0, height=0)]),
         "turn.images[0]", "turn.images[0] has zero size (0x0)"),
        (pb.Turn(audio=pb.Audio(data=_audio_file(clip, 16_000, "MP3"), encoding=pb.AUDIO_FILE)),
         "turn.audio.data", "turn.audio.data: the file is MP3 audio; accepted files are WAV, FLAC and OGG"),
        (pb.Turn(audio=pb.Audio(data=_audio_file(clip[:0], 16_000, "WAV"), encoding=pb.AUDIO_FILE)),
         "turn.audio.data", "turn.audio.data: the file holds no samples (a WAV file of 0 frames)"),
        (pb.Turn(audio=pb.Audio(data=_audio_file(clip, 16_000, "WAV"), encoding=pb.AUDIO_FILE)),
         "turn.audio.data", "turn.audio.data: the file lasts 3.5 s; the limit is 3 s (split long recordings into turns)"),
        (pb.Turn(audio=pb.Audio(data=(clip * 32767).astype("<i2").tobytes(), encoding=pb.PCM_S16LE, sample_rate_hz=16_000)),
         "turn.audio.data", "turn.audio.data lasts 3.5 s; the limit is 3 s (split long recordings into turns)"),
    ]
    with ServerThread(full_analyzer, max_turns_per_second=1000, max_audio_seconds=3.0) as server:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            for turn, field, message in cases:
                conversation._requests.put(pb.ConverseRequest(turn=turn))
                with pytest.raises(TurnRefusedError) as refused:
                    parse_turn_response(conversation._next_response(60))
                assert (refused.value.field, refused.value.details) == (field, message)


def test_a_directory_given_as_a_turns_media_is_called_a_directory(full_analyzer, tmp_path: Path):
    """The library said "no such file" (audio) and "image file not found" (image) for a folder."""
    from affect import InvalidInputError

    blank = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))[1].tobytes()
    for turn, message in ((Turn(audio=str(tmp_path)), f"audio: {tmp_path.name!r} is a directory, not a file"),
                          (Turn(image=str(tmp_path)), f"image: {tmp_path.name!r} is a directory, not a file"),
                          (Turn(images=[blank, str(tmp_path)]), f"images[1]: {tmp_path.name!r} is a directory, not a file")):
        with pytest.raises(InvalidInputError) as refused:
            full_analyzer.conversation().analyze(turn)
        assert str(refused.value) == message


# What a voice bot's speech recogniser gives for a turn it heard nothing in: empty, or white space.
EMPTY_TRANSCRIPTS: list[str | bytes] = ["", "   ", " \n\t\x00 ", b""]


def test_an_empty_transcript_beside_audio_is_read_from_the_audio_by_the_library(full_analyzer: Analyzer, speech_flac: bytes,
                                                                                  face_png: bytes) -> None:
    """A turn with audio whose text is empty or white space was refused whole ("text is empty"):
    it is read from what it carries, TEXT absent with why, as silence is for speech; text that is
    none to read with nothing else is still refused, naming the field."""
    from affect import InvalidInputError, Modality
    from affect.limits import EMPTY_TEXT
    from affect_proto import rules

    assert EMPTY_TEXT == "empty text"
    alone = full_analyzer.analyze(audio=speech_flac)
    for empty in EMPTY_TRANSCRIPTS:
        with full_analyzer.conversation() as conversation:
            result = conversation.analyze(empty, audio=speech_flac, speaker="caller")
        assert result.present == (Modality.SPEECH,) and result.absent == {Modality.TEXT: EMPTY_TEXT}, result.absent
        assert result.emotions == pytest.approx(alone.emotions, abs=1e-6) and result.state is not None
    pictured = full_analyzer.analyze(Turn(text="", image=face_png))
    assert pictured.present == (Modality.FACE,) and pictured.absent == {Modality.TEXT: "empty text"}
    silent = full_analyzer.analyze(text=" ", audio=np.zeros(32000, np.float32), sample_rate=16000)
    assert silent.fused is None and silent.no_reading_reason == "text: empty text; speech: no speech detected"
    speech_only = Analyzer(text=None, speech=full_analyzer.speech, face=None)  # no text encoder is needed for it
    assert speech_only.analyze(text="", audio=speech_flac).emotions == pytest.approx(alone.emotions, abs=1e-6)
    for empty in EMPTY_TRANSCRIPTS:
        with pytest.raises(InvalidInputError) as refused:
            full_analyzer.analyze(text=empty)
        assert refused.value.field == "text" and str(refused.value) == rules.only_empty_text("text")
    with pytest.raises(InvalidInputError, match="not valid UTF-8"):  # text that is not none to read is checked as ever
        full_analyzer.analyze(text=b"\xff\xfe", audio=speech_flac)


def test_an_empty_transcript_beside_audio_is_read_from_the_audio_over_grpc(full_analyzer: Analyzer, server: ServerThread,
                                                                            speech_flac: bytes, face_png: bytes) -> None:
    """The same through a real server and both client twins: the client sends the empty text as it
    is (the result says TEXT was absent, and why), in a conversation and alone; empty text alone is
    refused by the client before anything is sent, with the library's message and field."""
    import asyncio

    from affect import InvalidInputError as LibraryInputError
    from affect_client import AsyncAffectClient, InvalidInputError

    expected = full_analyzer.analyze(text="", audio=speech_flac, speaker="caller")
    audio = Audio(speech_flac, pb.AUDIO_FILE)
    with AffectClient(server.target) as client, client.conversation() as conversation:
        for empty in EMPTY_TRANSCRIPTS:
            for result in (conversation.send(empty, audio=audio, speaker="caller"), client.analyze(empty, audio=audio)):
                assert result.present == ("speech",) and result.absent == {"text": "empty text"}, result.absent
                assert result.emotions == pytest.approx(expected.emotions, abs=2e-4)
        pictured = conversation.send("  ", images=[Image.encoded(face_png)])
        assert pictured.present == ("face",) and pictured.absent == {"text": "empty text"}
        assert conversation.send("and text still works").present == ("text",)

    async def async_twin() -> tuple[tuple[str, ...], dict[str, str]]:
        async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
            result = await conversation.send("", audio=audio, speaker="caller")
            return result.present, dict(result.absent)

    assert asyncio.run(async_twin()) == (("speech",), {"text": "empty text"})
    with pytest.raises(LibraryInputError) as library:
        full_analyzer.analyze(text="  ")

    async def async_refused() -> InvalidInputError:
        async with AsyncAffectClient("127.0.0.1:9", max_retries=0) as nowhere:
            with pytest.raises(InvalidInputError) as refused:
                await nowhere.analyze("  ")
        return refused.value

    with AffectClient("127.0.0.1:9", max_retries=0) as nowhere:  # nothing listens: refused before sending
        with pytest.raises(InvalidInputError) as refused:
            nowhere.analyze("  ")
    for error in (refused.value, asyncio.run(async_refused())):
        assert error.field == library.value.field == "text" and str(error) == str(library.value)


def test_a_modality_without_its_model_is_absent_beside_one_that_is_read_by_the_library(
        full_analyzer: Analyzer, analyzer: Analyzer, speech_flac: bytes, face_png: bytes) -> None:
    """A speech-only analyzer refused a voice bot's usual turn, transcript and audio ("this analyzer
    has no text encoder loaded"): it reads the audio, TEXT absent with why, as empty text is; the
    same for face and speech. A turn with nothing it can read is still refused, naming what is missing."""
    from affect import InvalidInputError, Modality
    from affect_proto import rules

    assert rules.no_model_loaded("text") == "no text model loaded"
    speech_only = Analyzer(text=None, speech=full_analyzer.speech, face=None, forecast=None)
    alone = speech_only.analyze(audio=speech_flac)
    with speech_only.conversation() as conversation:
        heard = conversation.analyze("hello", audio=speech_flac, speaker="caller")
        seen = conversation.analyze("hello", audio=speech_flac, image=face_png, speaker="caller")
        empty = conversation.analyze("", audio=speech_flac, speaker="caller")
    assert heard.present == (Modality.SPEECH,) and heard.absent == {Modality.TEXT: "no text model loaded"}
    assert heard.emotions == pytest.approx(alone.emotions, abs=1e-6) and heard.state is not None
    assert seen.present == (Modality.SPEECH,)
    assert list(seen.absent.items()) == [(Modality.TEXT, "no text model loaded"), (Modality.FACE, "no face model loaded")]
    assert seen.emotions == pytest.approx(alone.emotions, abs=1e-6) and seen.turn_index == 1
    assert empty.absent == {Modality.TEXT: rules.EMPTY_TEXT}  # what the turn holds is said before what the analyzer lacks
    text_only = analyzer.analyze("I can't believe it, this is great!", audio=speech_flac, image=face_png)
    assert text_only.present == (Modality.TEXT,)
    assert text_only.absent == {Modality.SPEECH: "no speech model loaded", Modality.FACE: "no face model loaded"}
    assert text_only.emotions == pytest.approx(analyzer.analyze("I can't believe it, this is great!").emotions, abs=1e-6)
    refused = [(speech_only, Turn(text="hello"), "text", "this analyzer has no text encoder loaded"),
               (speech_only, Turn(text="hello", image=face_png), "images", "this analyzer has no face or text encoder loaded"),
               (analyzer, Turn(text=" ", audio=speech_flac), "audio", "this analyzer has no speech encoder loaded")]
    for reader, turn, field, message in refused:
        with pytest.raises(InvalidInputError) as nothing_to_read:
            reader.analyze(turn)
        assert (nothing_to_read.value.field, str(nothing_to_read.value)) == (field, message)
    assert message == rules.no_model_for(["speech"])


def test_a_modality_without_its_model_is_absent_over_grpc_on_a_server_started_without_it(
        full_analyzer: Analyzer, speech_flac: bytes, face_png: bytes) -> None:
    """``affect serve --text-model none --face-model none`` (a speech-only deployment) refused
    ``send("hello", audio=...)`` (INVALID_ARGUMENT, turn.text); it reads the audio and says TEXT was
    absent, as the library does, in a conversation and alone; text alone is refused naming
    ``turn.text``, and the conversation goes on."""
    speech_only = Analyzer(text=None, speech=full_analyzer.speech, face=None, forecast=None)
    expected = speech_only.analyze("hello", audio=speech_flac, image=face_png, speaker="caller")
    audio = Audio(speech_flac, pb.AUDIO_FILE)
    with ServerThread(None, text_model="none", face_model="none", max_turns_per_second=1000) as server, \
            AffectClient(server.target) as client:
        with client.conversation() as conversation:
            heard = conversation.send("hello", audio=audio, speaker="caller")
            assert heard.present == ("speech",) and heard.absent == {"text": "no text model loaded"}, heard.absent
            with pytest.raises(TurnRefusedError) as refused:
                conversation.send("hello", speaker="caller")
            assert refused.value.code.name == "INVALID_ARGUMENT"
            assert (refused.value.field, refused.value.details) == ("turn.text",
                                                                    "turn.text: this analyzer has no text encoder loaded")
            seen = conversation.send("hello", audio=audio, images=[Image.encoded(face_png)], speaker="caller")
            assert seen.turn_index == 1  # the refused turn was not counted
        alone = client.analyze("hello", audio=audio, images=[Image.encoded(face_png)], speaker="caller")
    for result in (seen, alone):
        assert result.present == ("speech",)
        assert list(result.absent.items()) == [(m.value, why) for m, why in expected.absent.items()] == \
            [("text", "no text model loaded"), ("face", "no face model loaded")]
        assert result.emotions == pytest.approx(expected.emotions, abs=2e-4)

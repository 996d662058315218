"""Each rule a turn meets is defined once (``affect.limits``) and holds alike in the library and
on the wire (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affect import Analyzer, InputTooLargeError, InvalidInputError, ModelLoadError, Turn, UnknownModelError
from affect.limits import EMPTY_TEXT, EMPTY_TURN, MAX_ID_CHARS, MAX_IMAGES_PER_TURN, MAX_TEXT_CHARS
from affect.results import Modality
from affect.text._input import CleanText, clean_text
from affect_proto import affect_pb2 as pb
from affect_server.config import ServerConfig
from affect_server.convert import check_id, turn_from_pb


def test_an_empty_turn_is_refused_with_one_message_by_the_library_and_the_wire(analyzer):
    with pytest.raises(InvalidInputError) as library:
        analyzer.conversation().prepare(Turn())
    with pytest.raises(InvalidInputError) as wire:
        turn_from_pb(pb.Turn(speaker="caller"))
    assert str(library.value) == str(wire.value) == EMPTY_TURN
    assert library.value.field == wire.value.field == "turn"


def test_one_id_length_for_a_speaker_in_the_library_and_every_id_on_the_wire(analyzer):
    conversation = analyzer.conversation()
    conversation.prepare(Turn(text="hello", speaker="s" * MAX_ID_CHARS))
    assert check_id("s" * MAX_ID_CHARS, "turn.speaker") == "s" * MAX_ID_CHARS
    with pytest.raises(InvalidInputError, match=str(MAX_ID_CHARS)):
        conversation.prepare(Turn(text="hello", speaker="s" * (MAX_ID_CHARS + 1)))
    for field in ("turn.speaker", "turn.turn_id", "open.conversation_id"):
        with pytest.raises(InvalidInputError, match=str(MAX_ID_CHARS)):
            check_id("s" * (MAX_ID_CHARS + 1), field)


@pytest.mark.parametrize("forged", ["agent\n2030-01-01 INFO affect.server: FORGED", "caller\u2028", "a\u202eb", "tab\there"])
def test_an_id_with_a_control_or_format_character_is_refused_by_the_library_as_on_the_wire(analyzer, forged):
    """A speaker or conversation id holding a newline, a line separator or a bidi override would
    forge or hide lines in a log that names it: refused alike in the library and on the wire."""
    with pytest.raises(InvalidInputError, match="control or format character") as library:
        analyzer.conversation().prepare(Turn(text="hello", speaker=forged))
    with pytest.raises(InvalidInputError, match="control or format character") as wire:
        check_id(forged, "speaker")
    assert str(library.value) == str(wire.value) and library.value.field == "speaker"
    with pytest.raises(InvalidInputError, match="control or format character") as opened:
        analyzer.conversation(forged)
    assert opened.value.field == "conversation_id"
    with pytest.raises(InvalidInputError, match="must be a string"):
        analyzer.conversation(b"bytes-id")  # type: ignore[arg-type]
    analyzer.conversation("caller-7 / Zoë")  # letters of any script, spaces and punctuation are fine


def test_one_text_limit_for_the_encoder_and_the_server(analyzer):
    assert analyzer.text.max_chars == ServerConfig().max_text_chars == MAX_TEXT_CHARS
    conversation = analyzer.conversation()
    with pytest.raises(InvalidInputError, match=f"{MAX_TEXT_CHARS:,}"):
        conversation.prepare(Turn(text="a" * (MAX_TEXT_CHARS + 1)))


def test_too_many_images_are_refused_before_any_is_decoded(full_analyzer):
    # not images at all: counting comes first, so no decoding error can mask the count
    with pytest.raises(InvalidInputError, match=f"at most {MAX_IMAGES_PER_TURN} images"):
        full_analyzer.conversation().prepare(Turn(images=[b"not an image"] * (MAX_IMAGES_PER_TURN + 1)))


@pytest.mark.parametrize("single", ["face.png", b"\x89PNG\r\n\x1a\n", "array"])
def test_one_picture_given_as_the_list_of_pictures_is_refused_alike_by_library_and_client(analyzer, single):
    """``images="face.png"`` was read as eight one-letter file names ("at most 8 images", or
    "image file not found: f"): one message, from the one rule, in the library and the client."""
    import numpy as np
    from affect_client import InvalidInputError as ClientInputError
    from affect_client._inputs import turn_message

    single = np.zeros((48, 48), np.uint8) if single == "array" else single
    with pytest.raises(InvalidInputError, match="images must be a list") as library:
        analyzer.conversation().prepare(Turn(text="hi", images=single))
    with pytest.raises(ClientInputError, match="images must be a list") as client:
        turn_message("hi", images=single)
    assert library.value.field == client.value.field == "images" and str(library.value) == str(client.value)


@pytest.mark.parametrize("shape, channels", [((16000, 9), 9), ((9, 16000), 9), ((9, 10), 9), ((40, 12), 12)])
def test_audio_with_more_channels_than_the_contract_takes_is_refused_naming_the_channel_limit(shape, channels):
    """``(16000, 9)`` was refused as "expected [frames] or [frames, channels]", never saying that
    the 9 channels were what was wrong: the one rule (``affect_proto.rules``) says so, in the
    library and in the client alike; 8 channels either way round are taken."""
    import numpy as np
    from affect.speech._audio import prepare_array
    from affect_client import InvalidInputError as ClientInputError
    from affect_client._inputs import turn_message
    from affect_proto import rules

    expected = f"audio has shape {shape}: {channels} channels; the limit is {rules.MAX_AUDIO_CHANNELS}"
    with pytest.raises(InvalidInputError) as library:
        prepare_array(np.zeros(shape, np.float32), 16000)
    with pytest.raises(ClientInputError) as client:
        turn_message(audio=np.zeros(shape, np.float32), sample_rate=16000)
    assert library.value.field == client.value.field == "audio" and str(library.value) == str(client.value)
    assert str(client.value).startswith(expected)
    assert rules.audio_shape_problem((16000, 8)) is None and rules.audio_shape_problem((8, 16000)) is None


def test_a_turn_meets_the_images_rule_once_where_it_is_made(full_analyzer, data_root, monkeypatch):
    """``Turn.all_images`` checked the rule on each of its three calls a turn (what the turn
    carries, the face encoder's count and its decoding): a turn is checked once, when made, and
    one picture given as ``images`` cannot make one."""
    from affect import limits

    checked: list[object] = []
    rule = limits.images_not_a_list
    monkeypatch.setattr(limits, "images_not_a_list", lambda images: checked.append(images) or rule(images))
    with pytest.raises(InvalidInputError, match="images must be a list") as refused:
        Turn(text="hi", images="face.png")
    assert refused.value.field == "images" and checked == ["face.png"]
    face = sorted((data_root / "face" / "fer2013-test-slice" / "happy").glob("*.jpg"))[0]
    turn = Turn(text="Thanks, that's sorted!", images=[str(face), face.read_bytes()])
    result = full_analyzer.conversation().analyze(turn)
    assert result.present == (Modality.FACE, Modality.TEXT) and len(result.faces) == 2
    assert len(checked) == 2  # the refused turn's check and this turn's one


def test_a_text_first_is_the_turns_text_as_in_the_client(analyzer):
    """``analyzer.analyze("...")`` (as the client's ``send("...")`` takes it) failed with an
    AttributeError deep inside; a text first is the turn's text, and the keyword fields are typed
    as Turn's (``TurnFields``, kept alike here)."""
    from dataclasses import fields

    from affect.conversation import TurnFields

    assert set(TurnFields.__annotations__) == {f.name for f in fields(Turn)}
    line = "My parcel is lost again."
    alone = analyzer.analyze(line)
    assert alone.to_dict() == analyzer.analyze(text=line).to_dict() == analyzer.analyze(Turn(text=line)).to_dict()
    conversation = analyzer.conversation()
    first = conversation.analyze(line, speaker="caller")
    assert first.turn_index == 0 and first.state.speakers[0].speaker == "caller"
    assert conversation.analyze(line.encode(), speaker="caller").turn_index == 1  # bytes, as Turn takes them
    whole = analyzer.analyze_conversation([line, Turn(text="Thanks, that helps.")])
    assert [r.turn_index for r in whole] == [0, 1] and whole[0].emotions == first.emotions
    with pytest.raises(TypeError, match="got int"):
        conversation.analyze(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="twice"):
        conversation.analyze(line, text="another")


def test_a_closed_conversation_refuses_turns_instead_of_reading_them_without_state(analyzer):
    """Used after its ``with`` block, a conversation read audio and images as "nothing was sent"
    and failed on text with an AttributeError: its state is gone, so it says so."""
    from affect import ConversationClosedError

    with analyzer.conversation() as conversation:
        assert conversation.analyze(text="Where is my parcel?", speaker="Jane Doe +1-555-0100").turn_index == 0
    assert conversation.state.snapshot().speakers == ()  # the speaker's name and readings were kept after close
    with pytest.raises(ConversationClosedError, match="closed"):
        conversation.analyze(text="Still there?")
    with pytest.raises(TypeError, match="not both"):  # a Turn and loose fields: the fields were dropped
        analyzer.conversation().analyze(Turn(text="hi"), speaker="bob")


def test_an_unknown_weights_name_raises_unknown_model_error():
    from affect.text.weights import TextWeights

    with pytest.raises(UnknownModelError, match="no-such-model") as raised:
        TextWeights.resolve("no-such-model")
    assert isinstance(raised.value, ModelLoadError)  # what it was before it had its own class
    # every name it takes is listed: the members' names listed alone left out the ids, which are taken too
    default = TextWeights.DEFAULT
    assert f"{default.name} / {default.value.id} (DEFAULT)" in str(raised.value)
    assert all(f"{m.name} / {m.value.id}" in str(raised.value) for m in TextWeights)
    assert all(TextWeights.resolve(m.value.id) is m for m in TextWeights)


def test_text_is_cleaned_once_where_the_turn_enters(analyzer):
    """``Conversation.prepare`` cleans the text; what it made passes every later check as it is,
    while the encoder's own entry still cleans raw text (gap 3 of issue 19)."""
    raw = b"  I waited\x00 an hour.  "
    (request,) = analyzer.conversation().prepare(Turn(text=raw)).requests[Modality.TEXT]
    assert isinstance(request.text, CleanText) and request.text == "I waited an hour."
    assert clean_text(request.text) is request.text  # not cleaned a second time
    with pytest.raises(InputTooLargeError, match=f"{len(raw)} characters"):  # a smaller limit reads the text as sent
        clean_text(request.text, max_chars=len(request.text) + 1)
    assert analyzer.text.analyze(raw).emotions == analyzer.text.analyze_prepared([request])[0].result.emotions


def test_a_text_context_changes_only_when_the_answer_is_recorded(analyzer):
    """The batch call (here, in a micro-batch or in a Ray deployment on a copy of the context)
    reads the context; recording the answer, in the conversation's process, adds the turn."""
    conversation = analyzer.conversation()
    first = conversation.analyze(text="They called this morning.", speaker="A")
    (request,) = conversation.prepare(Turn(text="I can't believe it.", speaker="B")).requests[Modality.TEXT]
    (analysis,) = analyzer.text.analyze_prepared([request])
    assert len(request.context) == 1 and first.turn_index == 0
    assert request.record(analysis) is analysis.result
    assert len(request.context) == 2 and request.context.turns[-1] == (analysis.embedding, "B")


def test_the_client_pre_checks_the_same_rules_and_the_stream_goes_on(analyzer):
    """A turn that breaks a rule of the contract is refused by the client before it is sent, with
    the field and the message the library gives (both read ``affect_proto.rules``)."""
    from affect_client import AffectClient, InvalidInputError as ClientInputError

    from tests._serving import ServerThread

    cases = [
        ({}, "turn", Turn()),
        ({"text": "hi", "speaker": "s" * (MAX_ID_CHARS + 1)}, "speaker", Turn(text="hi", speaker="s" * (MAX_ID_CHARS + 1))),
        ({"text": "a" * (MAX_TEXT_CHARS + 1)}, "text", Turn(text="a" * (MAX_TEXT_CHARS + 1))),
        ({"text": " \x00\t "}, "text", Turn(text=" \x00\t ")),  # nothing left once cleaned
        ({"text": b"\xff\xfe not UTF-8"}, "text", Turn(text=b"\xff\xfe not UTF-8")),
        ({"text": 123}, "text", Turn(text=123)),
    ]
    with ServerThread(analyzer) as server, AffectClient(server.target) as client, client.conversation() as conversation:
        for kwargs, field, library_turn in cases:
            with pytest.raises(ClientInputError) as client_refused:
                conversation.send(**kwargs)
            with pytest.raises(InvalidInputError) as library_refused:
                analyzer.conversation().prepare(library_turn)
            assert client_refused.value.field == library_refused.value.field == field
            assert str(client_refused.value) == str(library_refused.value)
        with pytest.raises(ClientInputError, match=f"at most {MAX_IMAGES_PER_TURN} images") as too_many:
            conversation.send("hi", images=[b"\x89PNG"] * (MAX_IMAGES_PER_TURN + 1))
        assert too_many.value.field == "images"
        with pytest.raises(ClientInputError, match=str(MAX_ID_CHARS)):
            conversation.send("hi", turn_id="t" * (MAX_ID_CHARS + 1))
        with pytest.raises(ClientInputError, match="control or format character") as forged:  # as the server: no log lines
            conversation.send("hi", speaker="agent\n2030-01-01 INFO affect.server: FORGED")
        assert forged.value.field == "speaker"
        assert conversation.send("nothing was sent before this turn").turn_index == 0


def test_the_names_the_contracts_prior_rule_knows_are_the_librarys_and_the_clients() -> None:
    """The text prior's rule (``affect_proto.rules``), which the client applies before sending, names
    the emotions and presets itself (it imports nothing): they are the library's and the client's."""
    from affect.labels import EMOTION_NAMES
    from affect.text.prior import PRIOR_PRESETS
    from affect_client import Emotion as ClientEmotion
    from affect_proto import rules

    assert rules.EMOTION_NAMES == EMOTION_NAMES == tuple(e.value for e in ClientEmotion)
    assert rules.PRIOR_PRESET_NAMES == tuple(PRIOR_PRESETS)


def test_text_that_is_none_to_read_is_one_rule_for_the_library_the_wire_and_the_client(analyzer: Analyzer) -> None:
    """Empty or white-space text (an empty transcript) beside audio or images is left unread; alone,
    it is refused naming ``text``, alike in the library, the server's conversion and the client's
    message building; text over the limit is refused as too long whatever it holds."""
    from affect.limits import is_no_text
    from affect_client import InvalidInputError as ClientInputError
    from affect_client._inputs import turn_message
    from affect_proto import rules

    for text in ("", "  ", "\t\n", " \x00 ", b"", b"  "):
        assert is_no_text(text)
        assert Turn(text=text, audio=b"RIFF").unread() == {Modality.TEXT: EMPTY_TEXT}
        turn = Turn(text=text, audio=b"RIFF")
        assert turn.carried(turn.unread()) == {Modality.SPEECH: "audio"}
        assert turn_message(text, audio=b"RIFF").HasField("text")  # sent as it is: the result says it was empty
        wire = turn_from_pb(pb.Turn(text=text if isinstance(text, bytes) else text.encode(),
                                    audio=pb.Audio(data=b"RIFF", encoding=pb.AUDIO_FILE)))
        assert wire.unread() == {Modality.TEXT: EMPTY_TEXT}
        with pytest.raises(InvalidInputError) as library:
            analyzer.conversation().prepare(Turn(text=text))
        with pytest.raises(InvalidInputError) as on_the_wire:
            turn_from_pb(pb.Turn(text=text if isinstance(text, bytes) else text.encode()))
        with pytest.raises(ClientInputError) as client:
            turn_message(text)
        assert library.value.field == on_the_wire.value.field == client.value.field == "text"
        assert str(library.value) == str(on_the_wire.value) == str(client.value) == rules.only_empty_text("text")
    for text in ("hi", " a ", b"\xff", 3):
        assert not is_no_text(text)
    spaces = " " * (MAX_TEXT_CHARS + 1)
    assert not is_no_text(spaces) and Turn(text=spaces, audio=b"RIFF").unread() == {}
    with pytest.raises(ClientInputError, match=f"{MAX_TEXT_CHARS:,}"):
        turn_message(spaces, audio=b"RIFF")


def test_trailers_written_into_a_status_message_read_back_as_sent() -> None:
    """Behind a proxy that drops trailers (Ray Serve's), the server writes its text trailers at the
    end of the status message (``rules.message_with_trailers``) and the client reads them there;
    a message without the marker, or with something else after it, is read as it is."""
    from affect_proto import rules

    trailers = [(rules.RETRY_PUSHBACK_TRAILER, "1000"), ("grpc-status-details-bin", b"\x08\x08"),
                (rules.ABORT_REASON_TRAILER, "peer_rate"), (rules.REFUSED_FIELD_TRAILER, "turn.audio.data")]
    message = "more than 1 Analyze calls per second (this client); see docs"
    carried = rules.message_with_trailers(message, trailers)
    assert carried == (f"{message} (affect-trailers: grpc-retry-pushback-ms=1000&affect-reason=peer_rate"
                       "&affect-field=turn.audio.data)")
    assert rules.trailers_in_message(carried) == (message, {rules.RETRY_PUSHBACK_TRAILER: "1000",  # binary not carried
                                                            rules.ABORT_REASON_TRAILER: "peer_rate",
                                                            rules.REFUSED_FIELD_TRAILER: "turn.audio.data"})
    odd = rules.message_with_trailers("why", [("affect-reason", "a b&c=d)")])
    assert rules.trailers_in_message(odd) == ("why", {"affect-reason": "a b&c=d)"})
    assert rules.message_with_trailers(message, [("grpc-status-details-bin", b"\x08")]) == message
    for plain in (message, "x (affect-trailers: not a query)", "x (affect-trailers: a=1"):
        assert rules.trailers_in_message(plain) == (plain, {})


def _media_as_strings() -> dict[str, str]:
    """What web apps hold media as, each carrying a marker: a 48x48 JPEG in base64 and as a data:
    URI, a short WAV in base64."""
    import base64
    import io
    import wave

    import cv2
    import numpy as np

    jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8))[1].tobytes()
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(3200))
    return {"image base64": "ZQXMARK" + base64.b64encode(jpeg).decode(),
            "image data URI": "data:image/jpeg;base64,ZQXMARK" + base64.b64encode(jpeg).decode(),
            "audio base64": "ZQXMARK" + base64.b64encode(wav.getvalue()).decode()}


@pytest.mark.parametrize("kind", ["image base64", "image data URI", "audio base64"])
def test_media_given_as_base64_is_refused_without_being_quoted_by_the_library_and_the_client(full_analyzer: Analyzer,
                                                                                            kind: str) -> None:
    """A base64 picture given where a path belongs escaped as ``OSError: [Errno 36] File name too
    long: '<the whole face>'`` (``Path.is_dir``), or was quoted in "no such file: ...": now an
    ``InvalidInputError`` saying what was expected, giving only the string's length (one rule,
    ``rules.file_path_problem``), in the library and the client alike."""
    from affect_client import TurnInputError
    from affect_client._inputs import turn_message

    blob = _media_as_strings()[kind]
    media = {"audio": blob} if kind.startswith("audio") else {"images": [blob]}
    with pytest.raises(InvalidInputError) as library:
        full_analyzer.conversation().analyze(Turn(**media))
    with pytest.raises(TurnInputError) as client:
        turn_message(**media)
    expected = (f"a string is a file path; this one is not a file that exists ({len(blob):,} characters; media given "
                "as base64 or a data: URI must be decoded to bytes first)")
    for error in (library.value, client.value):
        assert str(error).endswith(expected), str(error)
        chained: BaseException | None = error
        while chained is not None:  # no OSError quoting the string behind it, not even suppressed
            assert "ZQXMARK" not in str(chained) and not isinstance(chained, OSError), repr(chained)
            chained = chained.__cause__ or chained.__context__
    assert str(library.value).startswith("audio: " if kind.startswith("audio") else "images[0]: ")
    assert str(client.value).startswith("audio: " if kind.startswith("audio") else "images[0]: ")


def test_a_path_is_named_by_its_file_name_only_and_only_when_it_is_plausibly_a_path(tmp_path: Path) -> None:
    """The rule, once (``rules.shown_path``): a missing file, a folder or an unreadable path is
    named by its file name; a string no path could be (too long, a control character, a data:
    URI, a NUL) by its length; never an OSError."""
    from affect.face._input import load_gray
    from affect_client._inputs import turn_message
    from affect_proto import rules

    assert rules.shown_path(tmp_path / "calls" / "face.jpg") == "'face.jpg'"
    for no_path in ("x" * (rules.MAX_SHOWN_PATH_CHARS + 1), "face\n.jpg", "data:image/png;base64,AAAA", "a\0b"):
        assert rules.shown_path(no_path) is None
        with pytest.raises(InvalidInputError, match=f"exists \\({len(no_path):,} characters") as library:
            load_gray(no_path)
        assert no_path not in str(library.value)
    for path, message in ((tmp_path / "missing" / "face.jpg", "images[0]: no such file 'face.jpg'"),
                          (tmp_path, f"images[0]: {tmp_path.name!r} is a directory, not a file")):
        with pytest.raises(InvalidInputError) as library:
            load_gray(str(path), field="images[0]")
        with pytest.raises(ValueError) as client:
            turn_message(images=[str(path)])
        assert str(library.value) == str(client.value) == message and str(tmp_path.parent) not in message


def test_a_real_path_too_long_to_quote_is_said_to_be_what_it_is(tmp_path: Path) -> None:
    """A real folder (or unreadable file) whose path is longer than a path quoted is described by
    its length and what it is, not as base64 or a data: URI."""
    from affect.face._input import load_gray
    from affect_proto import rules

    folder = tmp_path / ("d" * 200) / ("e" * 100)
    folder.mkdir(parents=True)
    assert len(str(folder)) > rules.MAX_SHOWN_PATH_CHARS
    with pytest.raises(InvalidInputError) as refused:
        load_gray(str(folder))
    message = str(refused.value)
    assert message == f"image: the path given ({len(str(folder)):,} characters) is a directory, not a file"
    assert "base64" not in message and "d" * 20 not in message


def test_a_video_a_conversation_file_and_the_clients_from_file_never_quote_a_string_no_path_could_be() -> None:
    """The same rule where a path names a video (``sample_frames``), a conversation file
    (``read_conversation``, the CLI's ``--conversation`` and ``affect plot``) or the client's
    ``Image.from_file`` / ``Audio.from_file``: InvalidInputError giving the string's length, never
    the string, never an OSError (a long one made ``is_dir`` raise "File name too long")."""
    from affect.face._video import sample_frames
    from affect.turns_file import read_conversation
    from affect_client import Audio, Image
    from affect_client import InvalidInputError as ClientInvalidInputError

    for blob in ("ZQXMARK" + "A" * 5000, "data:video/mp4;base64,ZQXMARKAAAAIGZ0eXBpc29t"):
        with pytest.raises(InvalidInputError) as video:
            list(sample_frames(blob, 2, 10))
        with pytest.raises(InvalidInputError) as conversation:
            read_conversation(Path(blob))
        refusals = [video.value, conversation.value]
        for from_file in (Image.from_file, Audio.from_file):
            with pytest.raises(ClientInvalidInputError) as client:
                from_file(blob)
            refusals.append(client.value)
        for refused in refusals:
            assert f"({len(blob):,} characters" in str(refused) and "ZQXMARK" not in str(refused), refused
            assert refused.__context__ is None and refused.__cause__ is None


def test_a_conversation_files_unknown_key_is_quoted_only_when_it_reads_as_a_field_name(tmp_path: Path) -> None:
    """Turns keyed by speaker by mistake ({"Alice": ...}) must not put the name into an error
    (a terminal, folder mode's CSV); a misspelt field name is quoted to help."""
    from affect.turns_file import read_conversation

    path = tmp_path / "keys.jsonl"
    path.write_text('{"Alice": "I want a refund", "speaker": "x"}\n')
    with pytest.raises(InvalidInputError) as named:
        read_conversation(path)
    assert "Alice" not in str(named.value) and "<a key of 5 characters>" in str(named.value)
    path.write_text('{"txt": "I want a refund", "vidoe": "a.mp4"}\n')
    with pytest.raises(InvalidInputError) as misspelt:
        read_conversation(path)
    assert "['txt', 'vidoe']" in str(misspelt.value)


def _small_video(path: Path) -> Path:
    """Three 32x32 gray frames at 10 a second, H.264 in MP4."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((32, 32), 120, np.uint8), format="gray")))
        out.mux(stream.encode(None))
    return path


def _small_files(folder: Path) -> dict[str, Path]:
    """A real file of each kind a path may name: a video, a conversation file, an image, a WAV."""
    import io

    import cv2
    import numpy as np
    import soundfile as sf

    folder.mkdir()
    (folder / "call.jsonl").write_text('{"text": "I want a refund"}\n')
    (folder / "face.png").write_bytes(cv2.imencode(".png", np.full((48, 48), 120, np.uint8))[1].tobytes())
    wav = io.BytesIO()
    sf.write(wav, np.zeros(16000, np.float32), 16000, format="WAV", subtype="PCM_16")
    (folder / "voice.wav").write_bytes(wav.getvalue())
    return {"video": _small_video(folder / "call.mp4"), "conversation": folder / "call.jsonl",
            "image": folder / "face.png", "audio": folder / "voice.wav"}


def test_a_file_its_reader_may_not_read_is_refused_alike_by_every_reader(tmp_path: Path) -> None:
    """A video or a conversation file its reader may not read (mode 000) escaped as a bare
    ``PermissionError`` quoting the whole path (the check before opening it, ``is_file``, needs no
    read permission). Now every reader, in the library and the client, refuses such a file as
    ``rules.file_path_problem`` words it: its field, its file name only, "Permission denied",
    raised outside any handler (no OSError quoting the path behind it)."""
    from affect.face._input import load_gray
    from affect.face._video import sample_frames
    from affect.speech._audio import probe_file
    from affect.turns_file import read_conversation
    from affect_client import Audio, Image
    from affect_client import InvalidInputError as ClientInvalidInputError
    from tests._unreadable import unreadable

    files = _small_files(tmp_path / "private-folder")
    readers = [("video", lambda: list(sample_frames(files["video"], 2, 10))),
               ("--conversation", lambda: read_conversation(files["conversation"])),
               ("image", lambda: load_gray(str(files["image"]))),
               ("audio", lambda: probe_file(str(files["audio"]))),
               ("image", lambda: Image.from_file(files["image"])),
               ("audio", lambda: Audio.from_file(files["audio"]))]
    kinds = ["video", "conversation", "image", "audio", "image", "audio"]
    for (field, read), kind in zip(readers, kinds):
        with unreadable(files[kind]):
            with pytest.raises((InvalidInputError, ClientInvalidInputError)) as refused:
                read()
        assert str(refused.value) == f"{field}: cannot read {files[kind].name!r}: Permission denied", refused.value
        assert "private-folder" not in str(refused.value)
        assert refused.value.__context__ is None and refused.value.__cause__ is None
        read()  # readable again: the same reader takes it


@pytest.mark.parametrize("array, message", [
    (np.zeros((8, 8), np.float32), "images[0]: an image array must be uint8, got float32"),
    (np.zeros((8, 8, 2), np.uint8), "images[0]: an image array must be (H, W) or (H, W, 1|3|4), got shape (8, 8, 2)"),
    (np.zeros((2, 8, 8, 3), np.uint8), "images[0]: an image array must be (H, W) or (H, W, 1|3|4), got shape (2, 8, 8, 3)"),
], ids=["float32", "two-channels", "a-batch"])
def test_an_image_array_is_refused_with_one_message_by_the_library_and_the_client(array: np.ndarray, message: str) -> None:
    """One rule (``rules.image_array_problem``) for an image array's dtype and shape, which the
    library (``array_to_gray``) and the client (``turn_message``) each wrote with the same words."""
    from affect.face._input import load_gray
    from affect_client import TurnInputError
    from affect_client._inputs import turn_message

    with pytest.raises(InvalidInputError) as library:
        load_gray(array, "rgb", field="images[0]")
    with pytest.raises(TurnInputError) as client:
        turn_message(images=[array], channel_order="rgb")
    assert str(library.value) == str(client.value) == message
    assert library.value.field == client.value.field == "images[0]"

"""The wire walk that refuses a request with more fields than a valid one can hold, before it is
parsed (``affect_server.request_bounds``): every valid request passes, each kind of excess is
named, and the walk reads at most the bound whatever the request's size; on a real server, a
request the walk refuses is refused as the checks made after parsing refuse the same mistake."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor

from affect import Analyzer
from affect_proto import affect_pb2 as pb
from affect_proto import rules
from affect_server.launch import free_port
from affect_server.request_bounds import REPEATED, SPARE_FIELDS, excess, fields_at_most
from affect_server.servicer import SERVICE_NAME, Unreadable, lenient_parser
from tests._serving import ServerThread
from tests._wire import field as _field
from tests._wire import varint as _varint


def _unknown(count: int) -> bytes:
    return (_varint(99 << 3) + b"\x00") * count  # field 99, a varint 0: two bytes each


FULL_OPTIONS = pb.ConversationOptions(omit_modality_results=True, disable_text_context=True, text_prior="uniform",
                                      escalation_anger=0.5, event_speakers=[f"s{i}" for i in range(rules.MAX_EVENT_SPEAKERS)])
FULL_TURN = pb.Turn(turn_id="t1", speaker="caller", text=b"Where is my parcel?",
                    audio=pb.Audio(data=bytes(32_000), encoding=pb.PCM_S16LE, sample_rate_hz=16_000, channels=1),
                    images=[pb.Image(data=bytes(12), encoding=pb.RAW_GRAY8, width=4, height=3)] * rules.MAX_IMAGES_PER_TURN)
VALID = [
    pb.ConverseRequest(),
    pb.ConverseRequest(open=pb.OpenConversation()),
    pb.ConverseRequest(open=pb.OpenConversation(conversation_id="c-1", options=FULL_OPTIONS, resume=True)),
    pb.ConverseRequest(turn=pb.Turn(text=b"hello")),
    pb.ConverseRequest(turn=FULL_TURN),
    pb.ConverseRequest(turn=pb.Turn(audio=pb.Audio(data=bytes(15 << 20), encoding=pb.FLOAT32_LE, sample_rate_hz=48_000))),
    pb.ConverseRequest(reset_speaker=pb.ResetSpeaker(speaker="caller")),
    pb.AnalyzeRequest(turn=FULL_TURN, options=FULL_OPTIONS),
    pb.AnalyzeRequest(turn=pb.Turn(images=[pb.Image(data=b"\xff\xd8" + bytes(100), encoding=pb.ENCODED)])),
]


@pytest.mark.parametrize("request_message", VALID, ids=lambda m: f"{type(m).__name__}-{m.ByteSize()}")
def test_every_valid_request_passes(request_message: pb.ConverseRequest | pb.AnalyzeRequest) -> None:
    data = request_message.SerializeToString()
    assert excess(data, request_message.DESCRIPTOR) is None
    assert lenient_parser(type(request_message))(data) == request_message


def test_a_valid_request_sent_by_a_newer_client_with_fields_this_server_does_not_know_passes() -> None:
    data = pb.ConverseRequest(turn=FULL_TURN).SerializeToString() + _unknown(SPARE_FIELDS)
    assert excess(data, pb.ConverseRequest.DESCRIPTOR) is None


def test_every_repeated_request_field_has_its_limit_in_the_one_table() -> None:
    def repeated(message: Descriptor, seen: set[str]) -> set[str]:
        found = set()
        for f in message.fields:
            if f.is_repeated:
                found.add(f.full_name)
            if f.message_type is not None and f.message_type.full_name not in seen:
                found |= repeated(f.message_type, seen | {f.message_type.full_name})
        return found

    requests = (pb.ConverseRequest.DESCRIPTOR, pb.AnalyzeRequest.DESCRIPTOR)
    assert set().union(*(repeated(r, set()) for r in requests)) == set(REPEATED)
    assert fields_at_most(pb.ConverseRequest.DESCRIPTOR) < 1000  # so that the walk is short


def test_an_image_over_the_contract_is_refused_in_the_count_checks_words() -> None:
    nine = pb.ConverseRequest(turn=pb.Turn(images=[pb.Image()] * 9)).SerializeToString()
    refused = excess(nine, pb.ConverseRequest.DESCRIPTOR)
    assert refused is not None and refused.field == "turn.images"
    assert refused.message == "turn.images: " + (rules.too_many_images(9) or "")
    parsed = lenient_parser(pb.ConverseRequest)(nine)
    assert isinstance(parsed, Unreadable) and parsed.field(opening=False) == "turn.images"
    assert parsed.told("unused") == "turn.images: a turn may carry at most 8 images"


def test_event_speakers_over_the_contract_are_refused_by_name() -> None:
    options = pb.ConversationOptions(event_speakers=[f"s{i}" for i in range(rules.MAX_EVENT_SPEAKERS + 1)])
    for request in (pb.ConverseRequest(open=pb.OpenConversation(options=options)), pb.AnalyzeRequest(options=options)):
        refused = excess(request.SerializeToString(), request.DESCRIPTOR)
        assert refused is not None and refused.field == "options.event_speakers", refused
        assert refused.message == "options.event_speakers names more than 16 speakers; the limit is 16"


def test_millions_of_fields_are_refused_after_reading_at_most_the_bound() -> None:
    cases = {
        "turn.images": _field(2, _field(5, b"") * ((15 << 20) // 2)),  # 7.8 M empty images
        "turn": _field(2, _unknown(5 << 20)),  # 5 M unknown fields in a turn
        "turn.audio": _field(2, _field(4, _unknown(5 << 20))),
        "": _unknown(5 << 20),  # and at the top: the request as a whole, which the call names
    }
    for where, data in cases.items():
        started = time.perf_counter()
        refused = excess(data, pb.ConverseRequest.DESCRIPTOR)
        elapsed = time.perf_counter() - started
        assert refused is not None and refused.field == where, (where, refused)
        assert elapsed < 0.05, (where, elapsed)  # the whole message walked: about 3 s
    in_analyzed_turn = excess(_field(1, _unknown(5 << 20)), pb.AnalyzeRequest.DESCRIPTOR)
    assert in_analyzed_turn is not None and in_analyzed_turn.field == "turn"
    message = excess(_unknown(5 << 20), pb.AnalyzeRequest.DESCRIPTOR)
    assert message is not None and message.message == (
        f"the request holds more than {fields_at_most(pb.AnalyzeRequest.DESCRIPTOR)} fields (nested ones "
        "counted), more than any valid AnalyzeRequest can")


def test_bytes_that_are_not_the_wire_format_are_left_to_the_parser() -> None:
    for data in (b"\xff", b"\x12\x05ab", b"\x0f", _field(2, b"\x80")):
        assert excess(data, pb.ConverseRequest.DESCRIPTOR) is None
        parsed = lenient_parser(pb.ConverseRequest)(data)
        assert isinstance(parsed, Unreadable) and parsed.excess is None
        assert (parsed.field(opening=False), parsed.reason(opening=False), parsed.turn_id) == ("turn", "unreadable", "")
        assert parsed.told("the request could not be read").startswith("the request could not be read (")


def test_keys_the_parser_keeps_unknown_are_not_counted_as_the_field_they_number() -> None:
    """Nine keys numbered as ``turn.images`` (5) but of another wire type, or inside a group, are
    fields the parser keeps unknown (it reads no image): they count towards the request's bound,
    not towards the images' limit."""
    nine = rules.MAX_IMAGES_PER_TURN + 1
    as_varints = (_varint(5 << 3 | 0) + b"\x00") * nine
    in_a_group = _varint(99 << 3 | 3) + (_varint(5 << 3 | 2) + b"\x00") * nine + _varint(99 << 3 | 4)
    for turn in (as_varints, in_a_group):
        data = _field(2, turn)  # ConverseRequest.turn
        assert excess(data, pb.ConverseRequest.DESCRIPTOR) is None
        parsed = lenient_parser(pb.ConverseRequest)(data)
        assert isinstance(parsed, pb.ConverseRequest) and len(parsed.turn.images) == 0
    nine_images = _field(2, _field(5, b"") * nine)
    refused = excess(nine_images, pb.ConverseRequest.DESCRIPTOR)
    assert refused is not None and refused.field == "turn.images"


def test_the_turn_id_read_before_the_excess_is_kept_for_the_refusal() -> None:
    """The walk keeps the last ``turn_id`` it met (the parser keeps the last too), read as UTF-8;
    one past the excess is never read (the walk stops there), nor one the parser would refuse."""
    nine = _field(5, b"") * (rules.MAX_IMAGES_PER_TURN + 1)
    cases = {
        _field(1, "t-é".encode()) + nine: "t-é",
        _field(1, b"first") + _field(1, b"last") + nine: "last",
        nine + _field(1, b"after"): "",
        _field(1, b"\xff\xfe") + nine: "",
        _field(3, b"hello") + nine: "",
    }
    for turn, turn_id in cases.items():
        for request, in_request in ((pb.ConverseRequest, 2), (pb.AnalyzeRequest, 1)):
            refused = excess(_field(in_request, turn), request.DESCRIPTOR)
            assert refused is not None and refused.field == "turn.images"
            assert refused.turn_id == turn_id, (turn, refused)


# ---------------------------------------------------------------------------- on a real server

@pytest.fixture(scope="module")
def server(analyzer: Analyzer) -> Iterator[ServerThread]:
    with ServerThread(analyzer, max_turns_per_second=1000, metrics_port=free_port()) as running:
        yield running


OPENING = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()
NINE_IMAGES = _field(5, b"") * (rules.MAX_IMAGES_PER_TURN + 1)
TOO_MANY_NAMES = pb.ConversationOptions(event_speakers=[f"s{i}" for i in range(rules.MAX_EVENT_SPEAKERS + 1)])


def _refused(server: ServerThread, code: str, reason: str) -> float:
    """``affect_refused_total`` under ``code`` and ``reason``, as a dashboard scrapes it."""
    sample = f'affect_refused_total{{code="{code}",reason="{reason}"}} '
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.config.metrics_port}/metrics", timeout=10).read().decode()
    return sum(float(line.removeprefix(sample)) for line in body.splitlines() if line.startswith(sample))


def _raw(channel: grpc.Channel, method: str) -> Callable[..., Any]:
    path = f"/{SERVICE_NAME}/{method}"
    if method == "Converse":
        return channel.stream_stream(path, request_serializer=None, response_deserializer=pb.ConverseResponse.FromString)
    return channel.unary_unary(path, request_serializer=None, response_deserializer=pb.AnalyzeResponse.FromString)


def _aborted(rpc: Callable[..., Any], request: bytes | Iterator[bytes]) -> tuple[grpc.StatusCode, str, str, str]:
    """The status, message, reason and field a call was ended with."""
    with pytest.raises(grpc.RpcError) as ended:
        answers = rpc(request, timeout=60)
        if isinstance(request, Iterator):
            list(answers)  # a stream's status comes at its end
    error: Any = ended.value
    trailers = dict(error.trailing_metadata())
    return (error.code(), error.details(), trailers.get(rules.ABORT_REASON_TRAILER, ""),
            trailers.get(rules.REFUSED_FIELD_TRAILER, ""))


def test_a_turn_refused_unread_is_answered_as_a_turn_the_checks_after_parsing_refuse(server: ServerThread) -> None:
    """In a conversation, a turn the walk refuses echoes its ``turn_id``, names its field as the
    contract does (``turn.images``; ``turn`` for an excess beside the turn) and is counted under
    ``invalid``, as a turn refused after parsing is (a turn id that is not UTF-8 there); bytes that
    do not parse stay ``unreadable``. Before: no turn id, the field ``request``, ``unreadable``."""
    beside = _field(2, _field(1, b"t-beside") + _field(3, b"hello")) + _unknown(SPARE_FIELDS + 300)
    parsed_bad = pb.ConverseRequest(turn=pb.Turn(turn_id="t-checked", text=b"\xc3\x28")).SerializeToString()
    not_parsed = pb.ConverseRequest(turn=pb.Turn(speaker="ab", text=b"hi")).SerializeToString().replace(b"ab", b"\xff\xfe")
    invalid, unreadable = _refused(server, "INVALID_ARGUMENT", "invalid"), _refused(server, "INVALID_ARGUMENT", "unreadable")
    with grpc.insecure_channel(server.target) as channel:
        answers = list(_raw(channel, "Converse")(iter([OPENING, _field(2, _field(1, b"t-9") + NINE_IMAGES), beside,
                                                       parsed_bad, not_parsed]), timeout=60))
    assert [a.WhichOneof("kind") for a in answers] == ["opened", "error", "error", "error", "error"], answers
    errors = [(a.error.turn_id, a.error.field, a.error.code) for a in answers[1:]]
    bad_argument = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert errors == [("t-9", "turn.images", bad_argument), ("t-beside", "turn", bad_argument),
                      ("t-checked", "turn.text", bad_argument), ("", "turn", bad_argument)], errors
    assert answers[1].error.message.startswith("turn.images: a turn may carry at most 8 images")
    assert _refused(server, "INVALID_ARGUMENT", "invalid") - invalid == 3  # the two walked, the one checked
    assert _refused(server, "INVALID_ARGUMENT", "unreadable") - unreadable == 1


def test_an_opening_refused_unread_ends_the_call_as_an_opening_the_checks_refuse(server: ServerThread) -> None:
    """An opening with 17 event speakers (the walk) and one with an empty name (the check after
    parsing) are the same mistake: the same status, reason ``open`` and field; so is excess in
    the opening as a whole, named ``open``. Before: reason ``unreadable``, field ``request``."""
    walked = pb.ConverseRequest(open=pb.OpenConversation(options=TOO_MANY_NAMES)).SerializeToString()
    checked = pb.ConverseRequest(open=pb.OpenConversation(options=pb.ConversationOptions(
        event_speakers=["customer", ""]))).SerializeToString()
    with grpc.insecure_channel(server.target) as channel:
        converse = _raw(channel, "Converse")
        refusals = [_aborted(converse, iter([first])) for first in (walked, checked, OPENING + _unknown(SPARE_FIELDS + 300))]
    bad_argument = grpc.StatusCode.INVALID_ARGUMENT
    assert [(code, reason, field) for code, _, reason, field in refusals] == [
        (bad_argument, "open", "options.event_speakers"), (bad_argument, "open", "options.event_speakers"),
        (bad_argument, "open", "open")], refusals
    assert refusals[0][1] == "options.event_speakers names more than 16 speakers; the limit is 16"
    assert refusals[2][1].startswith("the request holds more than ")


def test_an_analyze_request_refused_unread_is_refused_as_the_checks_after_parsing_refuse_it(server: ServerThread) -> None:
    """Analyze: nine images, 17 event speakers, and excess in the request as a whole are
    INVALID_ARGUMENT, reason ``invalid`` as an empty event speaker's name is, naming
    ``turn.images``, ``options.event_speakers`` and ``turn`` (the field an Analyze call refused
    whole names). Before: reason ``unreadable``, and ``request`` for the whole."""
    text = _field(1, _field(3, b"hello"))
    requests = [
        _field(1, NINE_IMAGES),
        pb.AnalyzeRequest(turn=pb.Turn(text=b"hello"), options=TOO_MANY_NAMES).SerializeToString(),
        pb.AnalyzeRequest(turn=pb.Turn(text=b"hello"), options=pb.ConversationOptions(
            event_speakers=["customer", ""])).SerializeToString(),
        text + _unknown(SPARE_FIELDS + 300),
    ]
    with grpc.insecure_channel(server.target) as channel:
        analyze = _raw(channel, "Analyze")
        refusals = [_aborted(analyze, request) for request in requests]
    bad_argument = grpc.StatusCode.INVALID_ARGUMENT
    assert [(code, reason, field) for code, _, reason, field in refusals] == [
        (bad_argument, "invalid", "turn.images"), (bad_argument, "invalid", "options.event_speakers"),
        (bad_argument, "invalid", "options.event_speakers"), (bad_argument, "invalid", "turn")], refusals
    assert refusals[0][1] == "turn.images: a turn may carry at most 8 images"

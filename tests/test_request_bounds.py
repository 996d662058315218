"""The wire walk that refuses a request with more fields than a valid one can hold, before it is
parsed (``affect_server.request_bounds``): every valid request passes, each kind of excess is
named, and the walk reads at most the bound whatever the request's size."""

from __future__ import annotations

import time

import pytest
from google.protobuf.descriptor import Descriptor

from affect_proto import affect_pb2 as pb
from affect_proto import rules
from affect_server.request_bounds import REPEATED, SPARE_FIELDS, excess, fields_at_most
from affect_server.servicer import Unreadable, lenient_parser
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
    assert isinstance(parsed, Unreadable) and parsed.field == "turn.images"
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
        "request": _unknown(5 << 20),  # and at the top
        "turn.audio": _field(2, _field(4, _unknown(5 << 20))),
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
        f"request: the request holds more than {fields_at_most(pb.AnalyzeRequest.DESCRIPTOR)} fields (nested ones "
        "counted), more than any valid AnalyzeRequest can")


def test_bytes_that_are_not_the_wire_format_are_left_to_the_parser() -> None:
    for data in (b"\xff", b"\x12\x05ab", b"\x0f", _field(2, b"\x80")):
        assert excess(data, pb.ConverseRequest.DESCRIPTOR) is None
        parsed = lenient_parser(pb.ConverseRequest)(data)
        assert isinstance(parsed, Unreadable) and parsed.field == ""
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

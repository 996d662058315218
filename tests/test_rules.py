"""Each rule a turn meets is defined once (``affect.limits``) and holds alike in the library and
on the wire (issue 19)."""

from __future__ import annotations

import pytest

from affect import InvalidInputError, ModelLoadError, Turn, UnknownModelError
from affect.limits import EMPTY_TURN, MAX_ID_CHARS, MAX_IMAGES_PER_TURN, MAX_TEXT_CHARS
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


def test_one_text_limit_for_the_encoder_and_the_server(analyzer):
    assert analyzer.text.max_chars == ServerConfig().max_text_chars == MAX_TEXT_CHARS
    conversation = analyzer.conversation()
    with pytest.raises(InvalidInputError, match=f"{MAX_TEXT_CHARS:,}"):
        conversation.prepare(Turn(text="a" * (MAX_TEXT_CHARS + 1)))


def test_too_many_images_are_refused_before_any_is_decoded(full_analyzer):
    # not images at all: counting comes first, so no decoding error can mask the count
    with pytest.raises(InvalidInputError, match=f"at most {MAX_IMAGES_PER_TURN} images"):
        full_analyzer.conversation().prepare(Turn(images=[b"not an image"] * (MAX_IMAGES_PER_TURN + 1)))


def test_an_unknown_weights_name_raises_unknown_model_error():
    from affect.text.weights import TextWeights

    with pytest.raises(UnknownModelError, match="no-such-model") as raised:
        TextWeights.resolve("no-such-model")
    assert isinstance(raised.value, ModelLoadError)  # what it was before it had its own class

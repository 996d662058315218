"""The gRPC service against a real server on loopback, with the real models."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from affect_client import (
    AffectClient,
    APIStatusError,
    AsyncAffectClient,
    Conversation,
    InvalidArgumentError,
    InvalidInputError,
    ResourceExhaustedError,
    TurnRefusedError,
    TurnTooLargeError,
    UnauthenticatedError,
    UnavailableError,
)
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc
from affect_proto import rules
from affect_server.launch import free_port as _free_port
from affect_server.limits import ConversationSlots
from tests._handover import AFTER_HANDOVER as _AFTER, BEFORE_HANDOVER as _BEFORE
from tests._serving import ServerThread, server_starting_later

from affect import Analyzer
from affect.text.weights import TextWeights

TEXT_MODEL_ID = TextWeights.DEFAULT.value.id  # the shipped default text model


@pytest.fixture(scope="module")
def server(analyzer):
    # every conversation comes from this one address: it may hold every turn in flight
    with ServerThread(analyzer, max_turns_per_second=1000, max_in_flight_share_per_peer=1.0,
                      metrics_port=_free_port()) as running:
        yield running


def test_a_conversation_gets_one_answer_per_turn_in_order(server):
    with AffectClient(server.target) as client, client.conversation() as conversation:
        assert conversation.id and conversation.models[0].id == TEXT_MODEL_ID
        texts = ["Hi, I need help with my bill.", "You charged me twice!", "Thank you, that's perfect."]
        results = [conversation.send(t, speaker="caller", turn_id=f"t{i}") for i, t in enumerate(texts)]
    assert [r.turn_id for r in results] == ["t0", "t1", "t2"]
    assert [r.turn_index for r in results] == [0, 1, 2]
    for r in results:
        assert r.present == ("text",) and r.modalities["text"].model == TEXT_MODEL_ID
        assert abs(sum(r.fused.emotions.values()) - 1) < 1e-4 and r.shares == {"text": pytest.approx(1.0)}


def test_stream_answers_match_the_library(server, analyzer):
    texts = ["We lost the game.", "Again? I can't believe it."]
    local = analyzer.conversation()
    expected = [local.analyze(text=t, speaker="A") for t in texts]
    with AffectClient(server.target) as client, client.conversation() as conversation:
        got = [conversation.send(t, speaker="A") for t in texts]
    for e, g in zip(expected, got):
        assert g.emotion == e.emotion.value
        assert g.fused.valence == pytest.approx(e.valence, abs=1e-5)


def test_fifty_concurrent_conversations_each_get_their_own_answers_in_order(server):
    async def one(client: AsyncAffectClient, k: int):
        async with client.conversation(f"conv-{k}") as conversation:
            out = []
            for i in range(4):
                r = await conversation.send(f"conversation {k} turn {i}: this is so frustrating" if k % 2 else
                                            f"conversation {k} turn {i}: thanks, lovely", speaker=f"s{k}", turn_id=f"{k}.{i}")
                out.append(r)
            return conversation.id, out

    async def main():
        async with AsyncAffectClient(server.target) as client:
            return await asyncio.gather(*(one(client, k) for k in range(50)))

    results = asyncio.run(main())
    for k, (conversation_id, turns) in enumerate(results):
        assert conversation_id == f"conv-{k}"
        assert [r.turn_id for r in turns] == [f"{k}.{i}" for i in range(4)]
        assert [r.turn_index for r in turns] == [0, 1, 2, 3]
        assert all(r.speaker == f"s{k}" for r in turns)
    batch = _metric(server, "affect_batch_size_sum") / max(1.0, _metric(server, "affect_batch_size_count"))
    assert batch > 1.0, "concurrent conversations should share forward passes"
    assert server.open_conversations() == 0


def _metric(server, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.config.metrics_port}/metrics", timeout=10).read().decode()
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name))


def test_turn_latency_counts_from_the_turns_receipt_through_its_decoding(analyzer):
    """The latency metric covers a turn from its message's receipt, decoding included: here the
    server's model workers are held for ``hold`` s as the turn arrives, so that its decoding (run
    on them) cannot begin before then. Counted from after the decoding, as it was, the turn took
    its model time alone (tens of ms); now at least ``hold`` less the time to send it, and no more
    than the client's own round trip, which holds it."""
    hold = 2.0
    with ServerThread(analyzer, metrics_port=_free_port()) as server:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            conversation.send("a first turn, so that nothing is still starting")
            count, total = _metric(server, "affect_turn_latency_seconds_count"), _metric(server, "affect_turn_latency_seconds_sum")
            held = [server.running.executor.submit(time.sleep, hold) for _ in range(server.config.workers)]
            sent = time.perf_counter()
            conversation.send("this turn waits for a worker to decode it")
            round_trip = time.perf_counter() - sent
            assert all(h.done() for h in held)
        assert _metric(server, "affect_turn_latency_seconds_count") == count + 1
        latency = _metric(server, "affect_turn_latency_seconds_sum") - total
    assert hold - 0.5 < latency <= round_trip, (latency, round_trip)


@pytest.mark.parametrize(
    "turn, field, message",
    [
        (pb.Turn(text=b"\xff\xfe\xfd"), "turn.text", "UTF-8"),
        (pb.Turn(text=b""), "turn.text", "empty"),
        (pb.Turn(text=b"x" * 20_000), "turn.text", "limit"),
        (pb.Turn(speaker="s" * 500, text=b"hi"), "turn.speaker", "128"),
        (pb.Turn(turn_id="i" * 500, text=b"hi"), "turn.turn_id", "128"),
        (pb.Turn(), "turn", "at least one"),
    ],
)
def test_malformed_turns_are_refused_and_the_stream_goes_on(server, turn, field, message):
    with AffectClient(server.target) as client, client.conversation() as conversation:
        conversation.send("first turn is fine")
        conversation._requests.put(pb.ConverseRequest(turn=turn))  # a raw message no SDK helper would build
        with pytest.raises(TurnRefusedError) as refused:
            from affect_client._core import parse_turn_response

            parse_turn_response(conversation._next_response(30))
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.field == field and message in refused.value.details
        after = conversation.send("and the stream still answers")
        assert after.turn_index == 1  # refused turns are not counted


def test_a_second_open_is_refused_as_a_turn(server):
    with AffectClient(server.target) as client, client.conversation() as conversation:
        conversation._requests.put(pb.ConverseRequest(open=pb.OpenConversation()))
        from affect_client._core import parse_turn_response

        with pytest.raises(TurnRefusedError) as refused:
            parse_turn_response(conversation._next_response(30))
        assert refused.value.field == "open"
        assert conversation.send("still here").turn_index == 0


def test_first_message_must_open(server):
    channel = grpc.insecure_channel(server.target)
    stub = pb_grpc.AffectServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Converse(iter([pb.ConverseRequest(turn=pb.Turn(text=b"hi"))]), timeout=30))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


def test_unary_analyze_and_its_errors(server):
    with AffectClient(server.target) as client:
        assert client.analyze("I'm thrilled with the result!").present == ("text",)
        from affect_client import InvalidInputError as ClientInputError

        with pytest.raises(ClientInputError, match="not valid UTF-8"):  # refused before sending ...
            client.analyze(b"\xc3\x28")
    with grpc.insecure_channel(server.target) as channel:  # ... as the server refuses it, sent raw
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.AffectServiceStub(channel).Analyze(pb.AnalyzeRequest(turn=pb.Turn(text=b"\xc3\x28")), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "turn.text" in refused.value.details()


def test_an_unreadable_analyze_request_is_refused_as_invalid(server: ServerThread) -> None:
    """Bytes that do not parse as an AnalyzeRequest (a speaker name that is not UTF-8) are
    INVALID_ARGUMENT for the turn, with the reason ``unreadable``, not gRPC's UNKNOWN."""
    bad = pb.AnalyzeRequest(turn=pb.Turn(speaker="ab", text=b"hello")).SerializeToString().replace(b"ab", b"\xff\xfe")
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(f"/{pb.DESCRIPTOR.services_by_name['AffectService'].full_name}/Analyze",
                            request_serializer=None, response_deserializer=pb.AnalyzeResponse.FromString)(bad, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value
    assert "could not be read as an AnalyzeRequest" in refused.value.details()
    trailers = dict(refused.value.trailing_metadata())
    assert (trailers[rules.ABORT_REASON_TRAILER], trailers[rules.REFUSED_FIELD_TRAILER]) == ("unreadable", "turn")


def test_a_turn_refused_by_analyze_raises_what_it_raises_in_a_conversation(analyzer):
    """``analyze()`` raised ``InvalidArgumentError`` without ``.field`` (the field was only inside the
    message) where ``send()`` raises ``TurnRefusedError`` naming it: the server names the refused
    field in a trailer (``rules.REFUSED_FIELD_TRAILER``), so a turn refused by Analyze raises
    ``TurnRefusedError`` with the field, code, message and turn id the same turn gets in a
    conversation, in both twins; options refused raise ``InvalidArgumentError`` naming the option,
    as on opening a conversation."""
    from affect_proto import rules

    refused_turns = [({"text": "a" * 41}, "turn.text"), ({"audio": b"not audio at all"}, "turn.audio.data")]
    with ServerThread(analyzer, max_text_chars=40) as server, AffectClient(server.target, max_retries=0) as client:
        for kwargs, field in refused_turns:
            with client.conversation() as conversation, pytest.raises(TurnRefusedError) as in_conversation:
                conversation.send(**kwargs, turn_id="t1")
            with pytest.raises(TurnRefusedError) as alone:
                client.analyze(**kwargs, turn_id="t1")
            assert alone.value.field == in_conversation.value.field == field
            assert alone.value.code == in_conversation.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert alone.value.details == in_conversation.value.details and alone.value.turn_id == "t1"

            async def refused_async(kwargs: dict = kwargs) -> TurnRefusedError:
                async with AsyncAffectClient(server.target, max_retries=0) as async_client:
                    with pytest.raises(TurnRefusedError) as refused:
                        await async_client.analyze(**kwargs)
                return refused.value

            assert asyncio.run(refused_async()).field == field
        # Options the server refuses (the client refuses these before sending, by the same rule:
        # tests/test_client_parity.py), sent as they are, through the client's own call and stream.
        bad_prior = pb.ConversationOptions(text_prior="calm=1")
        with pytest.raises(InvalidArgumentError) as bad_option:
            client._unary(client._stub.Analyze, pb.AnalyzeRequest(turn=pb.Turn(text=b"hello"), options=bad_prior), turn_id="")
        assert bad_option.value.field == "options.text_prior"
        with pytest.raises(InvalidArgumentError) as on_opening:
            Conversation(client, pb.ConverseRequest(open=pb.OpenConversation(options=pb.ConversationOptions(text_prior="desk"))))
        assert on_opening.value.field == "options.text_prior"
        with grpc.insecure_channel(server.target) as channel:  # what the wire says
            with pytest.raises(grpc.RpcError) as raw:
                pb_grpc.AffectServiceStub(channel).Analyze(pb.AnalyzeRequest(turn=pb.Turn(text=b"a" * 41)), timeout=30)
        assert (rules.REFUSED_FIELD_TRAILER, "turn.text") in tuple(raw.value.trailing_metadata())


def test_a_conversation_may_bring_its_own_text_prior(server, analyzer):
    """``ConversationOptions.text_prior`` (the client's ``text_prior=``): that conversation's text is
    read under it, as the library reads it, while a conversation opened beside it without one keeps
    the server's; a bad prior is refused on opening, naming the option, and the server goes on."""
    texts = ["I need to change my address.", "This is the third time you lost my parcel!"]
    desk = {"neutral": 0.9, "anger": 0.1}
    with analyzer.conversation(text_prior=desk) as local:
        expected = [local.analyze(text=t, speaker="caller") for t in texts]
    with AffectClient(server.target) as client:
        with client.conversation(text_prior=desk) as at_desk, client.conversation() as plain:
            for t, e in zip(texts, expected):
                got, other = at_desk.send(t, speaker="caller"), plain.send(t, speaker="caller")
                assert got.fused.emotions == pytest.approx(e.emotions, abs=1e-5)
                assert got.emotion in ("neutral", "anger") and got.fused.emotions["neutral"] > other.fused.emotions["neutral"]
        unary = client.analyze(texts[1], text_prior="neutral=0.9,anger=0.1")
        assert unary.fused.emotions["happiness"] == pytest.approx(0.0, abs=1e-6)
        with pytest.raises(InvalidArgumentError, match="options.text_prior: unknown text prior 'desk'"):  # sent as it is
            Conversation(client, pb.ConverseRequest(open=pb.OpenConversation(options=pb.ConversationOptions(text_prior="desk"))))
        with pytest.raises(InvalidArgumentError, match="options.text_prior"):
            client._unary(client._stub.Analyze, pb.AnalyzeRequest(turn=pb.Turn(text=b"hello"),
                                                                  options=pb.ConversationOptions(text_prior="calm=1")))
        with pytest.raises(InvalidInputError, match="unknown text prior 'desk'") as before_sending:  # the client's check
            client.conversation(text_prior="desk")
        assert before_sending.value.field == "text_prior"
        assert client.analyze("still serving").present == ("text",)


def test_a_conversation_may_set_when_escalation_risk_is_raised(server, analyzer):
    """A console over gRPC could not tune escalation_risk (only a library user could, through
    StateThresholds): ``ConversationOptions.escalation_anger`` (the client's ``escalation_anger=``)
    sets that conversation's level, as the library's ``affect.state.escalation_at`` does; a bad
    value is refused on opening, naming the option."""
    import math

    from affect.state import escalation_at

    lines = ["This is ridiculous, I'm paying for this!", "I'm furious. Cancel my account now!"]

    def warnings(conversation) -> list[float]:
        return [e.value for line in lines for e in conversation.send(line, speaker="customer").events
                if e.kind == "escalation_risk"]

    with analyzer.conversation(thresholds=escalation_at(0.5)) as local:
        expected = [e.value for line in lines for e in local.analyze(line, speaker="customer").events
                    if e.kind == "escalation_risk"]
    with AffectClient(server.target) as client:
        with client.conversation() as default, client.conversation(escalation_anger=0.5) as surer, \
                client.conversation(escalation_anger=0.95) as strict:
            assert warnings(default)  # these turns warn at the library's 0.20
            assert expected and expected[0] >= 0.5 and warnings(surer) == pytest.approx(expected, abs=1e-5)
            assert warnings(strict) == []
        for bad in (0.0, 1.5, math.nan):
            with pytest.raises(InvalidArgumentError, match="options.escalation_anger must be in"):  # sent as it is
                Conversation(client, pb.ConverseRequest(open=pb.OpenConversation(
                    options=pb.ConversationOptions(escalation_anger=bad))))
            with pytest.raises(InvalidInputError, match="escalation_anger must be in"):  # the client's check, by the same rule
                client.conversation(escalation_anger=bad)
    assert escalation_at(0.5).escalation_rearm == pytest.approx(0.5 * 0.13 / 0.20)


def _assert_close(got, expected, where: str = "") -> None:
    """Equal, floats to the wire's float32 precision, in nested dicts and lists."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (where, got, expected)
        for key in expected:
            _assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), (where, got, expected)
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_close(g, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, abs=1e-5), where
    else:
        assert got == expected, (where, got, expected)


def _support_call() -> list[tuple[str, str]]:
    import json

    lines = (Path(__file__).parents[1] / "docs" / "examples" / "support-call.jsonl").read_text().splitlines()
    return [(turn["speaker"], turn["text"]) for turn in map(json.loads, lines)]


def test_a_conversation_raises_events_only_for_its_event_speakers(server):
    """A console over gRPC was warned about its own agents (the customer's outburst on the support
    call raises escalation_risk for the agent too) and had to filter by hand:
    ``ConversationOptions.event_speakers`` (the client's ``event_speakers=``, both twins) raises only
    the named speakers' events; every turn's reading, state and forecast arrive as without it."""
    call = _support_call()

    async def watched_async() -> list:
        async with AsyncAffectClient(server.target) as client, client.conversation(event_speakers=["customer"]) as c:
            return [await c.send(text, speaker=speaker) for speaker, text in call]

    with AffectClient(server.target) as client:
        with client.conversation() as every, client.conversation(event_speakers=["customer"]) as watched:
            pairs = [(every.send(text, speaker=speaker), watched.send(text, speaker=speaker)) for speaker, text in call]
    assert {e.speaker for a, _ in pairs for e in a.events} == {"customer", "agent"}  # the agent is warned about too
    for (a, w), w_async in zip(pairs, asyncio.run(watched_async())):
        assert w.events == tuple(e for e in a.events if e.speaker == "customer")
        _assert_close(w_async.to_dict(), w.to_dict())
        _assert_close({**w.to_dict(), "events": None}, {**a.to_dict(), "events": None})  # readings, state, forecast
    agent = [w for _, w in pairs if w.speaker == "agent"]
    assert agent and all(w.has_reading for w in agent) and any(f.speaker == "agent" for f in pairs[-1][1].state.forecast)


@pytest.mark.parametrize("names, where, client_says", [
    ([f"agent {i}" for i in range(17)], "options.event_speakers names more than 16 speakers; the limit is 16",
     "event_speakers names 17 speakers; the limit is 16"),
    (["customer", ""], "options.event_speakers[1] is empty", None),
    (["x" * 129], "options.event_speakers[0] is longer than 128 characters", None),
    (["cust\u2028omer"], "options.event_speakers[0] has a control or format character (U+2028)", None),
])
def test_event_speakers_that_could_not_name_speakers_are_refused_with_invalid_argument(server, names, where, client_says):
    """Refused when the conversation opens (and by Analyze), naming the option; the client refuses
    the same before sending (sent raw here, as another client could). Too many names are refused
    before the request is parsed (``request_bounds``), counted only as far as the limit."""
    from affect_client import InvalidInputError as ClientInputError

    options = pb.ConversationOptions(event_speakers=names)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.AffectServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Converse(iter([pb.ConverseRequest(open=pb.OpenConversation(options=options))]), timeout=30))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and where in refused.value.details()
        with pytest.raises(grpc.RpcError) as refused:
            stub.Analyze(pb.AnalyzeRequest(turn=pb.Turn(text=b"hello"), options=options), timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and where in refused.value.details()
    with AffectClient(server.target) as client:
        with pytest.raises(ClientInputError, match=re.escape(client_says or where.removeprefix("options."))) as early:
            client.conversation(event_speakers=names)
        assert early.value.field == "event_speakers"
        with pytest.raises(ClientInputError, match="must be a list of speaker names"):
            client.conversation(event_speakers="customer")  # one name alone: it would go letter by letter
        with client.conversation(event_speakers=["customer"]) as fine:
            assert fine.send("still serving", speaker="customer").present == ("text",)




def test_one_connection_may_hold_a_clients_streams_and_no_more(analyzer: Analyzer) -> None:
    """HTTP/2 MAX_CONCURRENT_STREAMS, as the server announces it in its first SETTINGS frame: the
    conversations and Analyze calls one client may hold (and its Analyze calls waiting), its spare slot and a
    few more streams (unset, it was unlimited)."""
    import socket
    import struct

    from affect_server.app import OTHER_STREAMS_PER_CONNECTION

    with ServerThread(analyzer, max_conversations_per_peer=5, max_analyze_per_peer=3, max_analyze_queued_per_peer=4) as running:
        with socket.create_connection(("127.0.0.1", int(running.target.rsplit(":", 1)[1])), timeout=10) as raw:
            raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # preface, empty SETTINGS
            header = raw.recv(9, socket.MSG_WAITALL)
            assert header[3] == 4, header  # the server's SETTINGS first
            body = raw.recv(int.from_bytes(header[:3], "big"), socket.MSG_WAITALL)
    settings = dict(struct.unpack(">HI", body[i:i + 6]) for i in range(0, len(body), 6))
    assert settings[3] == 5 + 1 + 3 + 4 + OTHER_STREAMS_PER_CONNECTION  # SETTINGS_MAX_CONCURRENT_STREAMS


def test_the_worst_case_of_requests_partly_received_is_the_one_the_help_states() -> None:
    """``affect serve --help`` states the defaults' figure, which the server logs at start."""
    from affect_server.config import ServerConfig

    help_text = next(f.metadata["help"] for f in ServerConfig.settings() if f.name == "max_message_mb")
    assert f"{ServerConfig().requests_on_the_way_bytes / 2**30:.1f} GiB with the defaults" in help_text


def _without(result, name: str) -> dict:
    """A result as a dict, without the speaker ``name`` in its state (speakers and forecast)."""
    d = result.to_dict()
    d["state"]["speakers"] = [s for s in d["state"]["speakers"] if s["speaker"] != name]
    d["state"]["forecast"] = [f for f in d["state"]["forecast"] if f["speaker"] != name]
    return d


def test_a_speaker_reset_over_the_wire_starts_them_anew_and_keeps_the_others(server):
    """A new caller put through (or a human agent taking over from a bot) had no way to start
    anew but closing the conversation, which lost the others' state: ``ResetSpeaker`` (the client's
    ``conversation.reset_speaker``, both twins) does what the library's does. The conversation goes
    on exactly as if the earlier caller's turns had been another speaker's: the new caller's angry
    first turn raises rising_anger (disarmed without the reset), and the agent's state is untouched."""
    async def reset_async() -> tuple[int, list]:
        async with AsyncAffectClient(server.target) as client, client.conversation() as c:
            for speaker, text in _BEFORE:
                await c.send(text, speaker=speaker)
            held = await c.reset_speaker("customer")
            return held, [await c.send(text, speaker=speaker) for speaker, text in _AFTER]

    with AffectClient(server.target) as client:
        with client.conversation() as kept, client.conversation() as reset, client.conversation() as renamed:
            for speaker, text in _BEFORE:
                kept.send(text, speaker=speaker)
                reset.send(text, speaker=speaker)
                renamed.send(text, speaker="earlier caller" if speaker == "customer" else speaker)
            assert reset.reset_speaker("customer") == 2 and reset.reset_speaker("nobody by that name") == 0
            got = [(kept.send(text, speaker=speaker), reset.send(text, speaker=speaker),
                    renamed.send(text, speaker=speaker)) for speaker, text in _AFTER]
    held, got_async = asyncio.run(reset_async())
    assert held == 2
    first_kept, first_reset, _ = got[0]
    assert not [e for e in first_kept.events if e.kind == "rising_anger"]
    assert [e.kind for e in first_reset.events] == ["rising_anger", "escalation_risk"]
    assert "from the first turn" in first_reset.events[0].message
    assert [s.turns for s in first_reset.state.speakers if s.speaker == "customer"] == [1]
    for (k, r, n), a in zip(got, got_async):
        _assert_close(_without(r, "earlier caller"), _without(n, "earlier caller"))
        _assert_close(a.to_dict(), r.to_dict())
        agent = [s for s in r.to_dict()["state"]["speakers"] if s["speaker"] == "agent"]
        _assert_close(agent, [s for s in k.to_dict()["state"]["speakers"] if s["speaker"] == "agent"])


def test_a_bad_reset_is_refused_and_the_conversation_goes_on(server):
    """An empty name (the unnamed speaker cannot be reset) or one a turn's speaker could not have:
    the client refuses it before sending; sent raw, the server answers a TurnError naming
    reset_speaker.speaker and the stream goes on."""
    from affect_client import InvalidInputError as ClientInputError

    with AffectClient(server.target) as client, client.conversation() as conversation:
        for bad in ("", "a\nb", "x" * 129):
            with pytest.raises(ClientInputError) as early:
                conversation.reset_speaker(bad)
            assert early.value.field == "speaker"
        for bad in ("", "a\nb"):
            conversation._requests.put(pb.ConverseRequest(reset_speaker=pb.ResetSpeaker(speaker=bad)))
            from affect_client._core import parse_reset_response

            with pytest.raises(TurnRefusedError) as refused:
                parse_reset_response(conversation._next_response(30))
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and refused.value.field == "reset_speaker.speaker"
        assert conversation.send("still here", speaker="caller").turn_index == 0
        assert conversation.reset_speaker("caller") == 1


def test_turn_rate_limit_is_refused_with_resource_exhausted(analyzer):
    with ServerThread(analyzer, max_turns_per_second=1.0) as server:
        with AffectClient(server.target, busy_retries=0) as client, client.conversation() as conversation:
            codes = []
            for i in range(6):
                try:
                    conversation.send(f"turn {i}")
                    codes.append("ok")
                except TurnRefusedError as refused:
                    codes.append(refused.code.name)
            assert codes[:2] == ["ok", "ok"] and "RESOURCE_EXHAUSTED" in codes
            time.sleep(1.1)
            assert conversation.send("after a pause").present == ("text",)


def test_messages_that_are_no_turn_count_against_the_turn_rate(analyzer: Analyzer) -> None:
    """Unreadable messages, empty ones and a second opening were answered before the rate limit
    was asked: a flood of them got INVALID_ARGUMENT as fast as it came (2,900 answers a second
    from one client, 10 CPU-s in 17 s). Each counts as a turn now, and past the rate gets
    RESOURCE_EXHAUSTED as a turn does; an empty message (or one with only fields the server does
    not know) is told so, not that only the first message may be an opening."""
    def answers(messages: list[bytes]) -> list[pb.TurnError]:
        opening = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()
        with grpc.insecure_channel(server.target) as channel:
            got = list(_raw_converse(channel)(iter([opening, *messages]), timeout=30))
        assert got[0].WhichOneof("kind") == "opened" and all(a.WhichOneof("kind") == "error" for a in got[1:])
        return [a.error for a in got[1:]]

    unknown_field = b"\xfa\x07\x01x"  # field 127, which this server does not know
    with ServerThread(analyzer, max_turns_per_second=1.0) as server:  # a burst of 2, then 1 a second
        errors = answers([b"", unknown_field, b"\xff", b""])
        assert [(e.code, e.field) for e in errors[:2]] == [(grpc.StatusCode.INVALID_ARGUMENT.value[0], "turn")] * 2
        assert all(e.message == "the message carries no `turn`, `reset_speaker` or `open`; the conversation goes on"
                   for e in errors[:2])
        assert [(e.code, e.field) for e in errors[2:]] == [(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], "turn")] * 2
        assert "more than 1 turns per second (a message that is no turn counts as one)" in errors[2].message
        assert 0 < errors[2].retry_after_ms <= 1000
        second_open = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()
        errors = answers([b"\xff", second_open, second_open])  # a new conversation: a bucket of its own
        assert [(e.code, e.field) for e in errors] == [(grpc.StatusCode.INVALID_ARGUMENT.value[0], "turn"),
                                                        (grpc.StatusCode.INVALID_ARGUMENT.value[0], "open"),
                                                        (grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], "turn")]
        assert errors[0].message.startswith("a message could not be read as a ConverseRequest")


def test_speaker_resets_are_rate_limited_apart_from_the_turns(analyzer):
    """``ResetSpeaker`` is cheap, but each is answered, and a conversation could send them without
    end: they are counted at ``max_turns_per_second`` in a bucket of their own (burst of 2 s), and
    refused past it as turns are (RESOURCE_EXHAUSTED with a retry hint, field ``reset_speaker``),
    the stream going on; a reset never costs a turn its place."""
    with ServerThread(analyzer, max_turns_per_second=1.0, metrics_port=_free_port()) as server:
        with AffectClient(server.target, max_retries=0, busy_retries=0) as client, client.conversation() as conversation:
            assert conversation.send("Hello, I'm calling about my order.", speaker="caller").turn_index == 0
            assert [conversation.reset_speaker("caller"), conversation.reset_speaker("caller")] == [1, 0]
            with pytest.raises(TurnRefusedError) as refused:
                conversation.reset_speaker("caller")
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refused.value.field == "reset_speaker" and "speaker resets per second" in str(refused.value)
            assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 1.0
            assert conversation.send("Still there?", speaker="caller").turn_index == 1  # the turns' own bucket
            time.sleep(refused.value.retry_after + 0.05)
            assert conversation.reset_speaker("caller") == 1
        assert _metric(server, 'affect_refused_total{code="RESOURCE_EXHAUSTED",reason="reset_rate"}') == 1

    with ServerThread(analyzer, max_turns_per_second=1.0) as server:  # waited out with busy_retries
        with AffectClient(server.target, max_retries=0, busy_retries=1) as client, client.conversation() as conversation:
            started = time.monotonic()
            assert [conversation.reset_speaker("caller") for _ in range(3)] == [0, 0, 0]
            assert time.monotonic() - started >= 0.5


def test_open_conversation_limit_and_message_size_limit(analyzer):
    with ServerThread(analyzer, max_conversations=2, max_message_mb=0.05) as server:
        with AffectClient(server.target, max_retries=0, busy_retries=0) as client:
            first, second = client.conversation(), client.conversation()
            with pytest.raises(ResourceExhaustedError, match="too many open conversations"):
                client.conversation()
            first.close()
            second.close()
            with pytest.raises(TurnTooLargeError):  # a 100 KB message against 0.05 MB, refused by gRPC there
                client.analyze(audio=b"RIFF" + bytes(100_000))
            deadline = time.monotonic() + 10
            while server.open_conversations() and time.monotonic() < deadline:
                time.sleep(0.05)
            with client.conversation() as third:  # the slots were given back
                assert third.send("hello").turn_index == 0


def test_a_request_over_the_message_size_is_counted_as_the_client_sees_it(analyzer):
    """gRPC refuses an Analyze request over ``max_message_mb`` itself, with RESOURCE_EXHAUSTED:
    the refusal counter says the same (it said INVALID_ARGUMENT, as for a call with no request,
    which is still refused and counted as such)."""
    with ServerThread(analyzer, max_message_mb=0.05, metrics_port=_free_port()) as server:
        with AffectClient(server.target, max_retries=0) as client:
            with pytest.raises(TurnTooLargeError, match="over this server's max_message_mb of 0.05 MiB"):
                client.analyze(audio=b"RIFF" + bytes(100_000))
        with grpc.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.RpcError) as empty:
                channel.stream_unary("/affect.v1.AffectService/Analyze", request_serializer=pb.AnalyzeRequest.SerializeToString,
                                     response_deserializer=pb.AnalyzeResponse.FromString)(iter([]), timeout=30)
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs a request" in empty.value.details()
        too_big = 'affect_refused_total{code="RESOURCE_EXHAUSTED",reason="message_size"}'
        deadline = time.monotonic() + 10  # counted when gRPC's cancellation reaches the call
        while _metric(server, too_big) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _metric(server, too_big) == 1
        assert _metric(server, 'affect_refused_total{code="INVALID_ARGUMENT"') == 1  # the empty call alone
        assert _metric(server, "affect_refused_total") == 2


def test_one_client_may_hold_only_its_share_of_the_conversations(analyzer):
    """``max_conversations_per_peer``: the server has slots left, this client has used its own;
    its slots are given back when its conversations close."""
    with ServerThread(analyzer, max_conversations=10, max_conversations_per_peer=2) as server:
        with AffectClient(server.target, max_retries=0, busy_retries=0) as client:
            first, second = client.conversation(), client.conversation()
            with pytest.raises(ResourceExhaustedError, match="this client has 2 conversations open") as refused:
                client.conversation()
            assert refused.value.retry_after and refused.value.retry_after > 0
            first.close()
            deadline = time.monotonic() + 10
            while server.open_conversations() > 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            with client.conversation() as third:
                assert third.send("hello").turn_index == 0
            second.close()
    slots = ConversationSlots(3, per_peer=2)
    assert [slots.acquire("a"), slots.acquire("a"), slots.acquire("a"), slots.acquire("b"), slots.acquire("c")] == \
        [None, None, "peer", None, "server"]
    for peer in ("a", "a", "b"):
        slots.release(peer)
    assert slots.open == 0 and not slots._by_peer  # nothing kept of a client with nothing open


def _refused(registry: Any, reason: str) -> float:
    return registry.get_sample_value("affect_refused_total", {"code": "RESOURCE_EXHAUSTED", "reason": reason}) or 0.0


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.01)


@contextlib.contextmanager
def _workers_held(server: ServerThread) -> Iterator[None]:
    """The server's model workers held: the turns admitted meanwhile stay in flight (their decoding
    waits for a worker) until the block ends."""
    running = server.running
    assert running is not None
    gate = threading.Event()
    held = [running.executor.submit(gate.wait, 60) for _ in range(server.config.workers)]
    try:
        yield
    finally:
        gate.set()
        assert all(h.result(10) for h in held)


def _send(stream: "_Stream", text: bytes) -> None:
    stream._requests.put(pb.ConverseRequest(turn=pb.Turn(text=text, speaker="caller")))


def test_a_client_past_its_share_is_refused_while_another_has_turns_in_flight(analyzer: Analyzer) -> None:
    """One client address filled ``max_in_flight_turns`` with its conversations' turns, and every
    other client was refused busy. While another client has turns in flight, a client holds at most
    ``max_in_flight_share_per_peer`` of the turns (and of the MB) in flight; past it, its turn is
    refused RESOURCE_EXHAUSTED with the retry hint (reason ``peer_busy``). The other client is IPv6
    loopback beside IPv4: another address."""
    with ServerThread(analyzer, host="localhost", max_in_flight_turns=4, max_in_flight_share_per_peer=0.5,
                      max_turns_per_second=1000) as server:
        running = server.running
        assert running is not None
        registry, budget = running.servicer.metrics.registry, running.servicer.budget
        streams = [_Stream(f"[::1]:{running.port}")] + [_Stream(f"127.0.0.1:{running.port}") for _ in range(3)]
        try:
            for i, stream in enumerate(streams):
                stream.open(f"share-{i}")
            with _workers_held(server):
                for admitted, stream in enumerate(streams[:3], start=1):  # one after the other: the fourth is refused
                    _send(stream, b"Where is my parcel?")
                    _until(lambda: budget.turns == admitted, f"{admitted} turns in flight")  # noqa: B023 - called at once
                _send(streams[3], b"Where is my parcel?")
                refused = next(streams[3]._answers)  # answered at once, the workers still held
                assert budget.turns == 3 and budget.held_by("ipv4:127.0.0.1") == 2  # this client's share of 4
            answers = [next(stream._answers) for stream in streams[:3]]
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    assert [a.WhichOneof("kind") for a in answers] == ["result", "result", "result"]
    assert refused.WhichOneof("kind") == "error"
    assert refused.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and refused.error.field == "turn"
    assert refused.error.message == "this client has 2 turns in flight (limit 2 per client)"
    assert refused.error.retry_after_ms > 0
    assert (_refused(registry, "peer_busy"), _refused(registry, "busy")) == (1, 0)


def test_a_lone_client_may_use_the_whole_budget_until_another_is_refused(analyzer: Analyzer) -> None:
    """The share holds only while another client contends: a chatbot backend carrying every
    conversation from one address was refused at half the server (its third turn in flight of 4
    here) with nobody else on it. Alone, it fills the budget. A newcomer (another address, by
    Analyze) is then refused busy, and that refusal holds the first client to its share: its next
    turns past it are refused ``peer_busy`` while its turns in flight finish, and the newcomer's
    retry (after the hint) is admitted. Converse and Analyze share the rule."""
    with ServerThread(analyzer, host="localhost", max_in_flight_turns=4, max_in_flight_share_per_peer=0.5,
                      max_turns_per_second=1000) as server:
        running = server.running
        assert running is not None
        registry, budget = running.servicer.metrics.registry, running.servicer.budget
        streams = [_Stream(f"127.0.0.1:{running.port}") for _ in range(4)]
        newcomer = AffectClient(f"[::1]:{running.port}", max_retries=0, busy_retries=0)
        try:
            for i, stream in enumerate(streams):
                stream.open(f"lone-{i}")
            with _workers_held(server):
                for stream in streams:
                    _send(stream, b"Where is my parcel?")
                _until(lambda: budget.turns == 4, "the lone client's 4 turns in flight")
                assert _refused(registry, "peer_busy") == 0
                with pytest.raises(TurnRefusedError, match="the server has 4 turns in flight") as busy:
                    newcomer.analyze("Hello?")
            assert busy.value.retry_after and busy.value.retry_after > 0
            alone = [next(stream._answers) for stream in streams]
            _until(lambda: budget.turns == 0, "the turns given back")
            with concurrent.futures.ThreadPoolExecutor(1) as waiting, _workers_held(server):
                for admitted, stream in enumerate(streams[:2], start=1):
                    _send(stream, b"Where is my parcel?")
                    _until(lambda: budget.turns == admitted, f"{admitted} turns in flight")  # noqa: B023 - called at once
                _send(streams[2], b"Where is my parcel?")
                held_to_share = next(streams[2]._answers)  # refused at once: the newcomer waits for room
                retried = waiting.submit(newcomer.analyze, "Hello?")
                _until(lambda: budget.turns == 3, "the newcomer's retry admitted")
            contended = [next(stream._answers) for stream in streams[:2]]
            assert retried.result(60).emotion
        finally:
            newcomer.close()
            for stream in streams:
                stream.__exit__(None, None, None)
    assert [a.WhichOneof("kind") for a in alone + contended] == ["result"] * 6
    assert held_to_share.WhichOneof("kind") == "error"
    assert held_to_share.error.message == "this client has 2 turns in flight (limit 2 per client)"
    assert held_to_share.error.retry_after_ms > 0
    assert (_refused(registry, "busy"), _refused(registry, "peer_busy")) == (1, 1)


def test_the_in_flight_budget_holds_a_client_to_its_share_only_while_another_contends() -> None:
    """``InFlightBudget`` with its clock in hand: another client contends while it has turns in
    flight, or for ``CONTENTION_WINDOW_S`` after a refusal for lack of room (a heavy-lane refusal
    is none); the bookkeeping keeps no client with nothing in flight past the window, and at most
    two refused ones within it."""
    from affect_server.limits import CONTENTION_WINDOW_S, InFlightBudget, Ticket

    now = [100.0]
    budget = InFlightBudget(max_turns=4, max_bytes=100, max_heavy=1, peer_share=0.5, clock=lambda: now[0])

    def admitted(nbytes: int, peer: str, heavy: bool = False) -> Ticket:
        ticket = budget.admit(nbytes, heavy, peer)
        assert isinstance(ticket, Ticket), (peer, ticket)
        return ticket

    lone = [admitted(10, "a") for _ in range(4)]  # alone: the whole budget, past its share of 2
    assert budget.admit(10, False, "b") == "turns"  # b is refused: it contends
    assert budget.admit(10, False, "a") == "turns"  # a's own refusal hides not b's
    lone.pop().release()
    assert budget.admit(10, False, "a") == "peer_turns"  # held to its share: 3 of 2
    lone.pop().release()
    newcomer = admitted(10, "b")
    now[0] += 2 * CONTENTION_WINDOW_S
    assert budget.admit(10, False, "a") == "peer_turns"  # b has a turn in flight
    newcomer.release()
    lone.append(admitted(10, "a"))  # b's refusal is past the window: a is alone again
    assert "b" not in dict(budget._refused) and list(budget._by_peer) == ["a"]  # nothing kept of b

    lone.append(admitted(10, "a"))
    for i in range(100):  # many refused clients: two remembered
        assert budget.admit(10, False, f"c{i}") == "turns"
    assert [peer for peer, _ in budget._refused] == ["c99", "c98"]
    for ticket in lone:
        ticket.release()
    now[0] += 2 * CONTENTION_WINDOW_S

    heavy = admitted(10, "h", heavy=True)  # a full heavy lane is not what the shares divide
    assert budget.admit(10, True, "b") == "heavy" and budget._refused == []  # the c refusals are past the window
    heavy.release()
    mine = [admitted(40, "a"), admitted(40, "a"), admitted(10, "a")]  # alone again at once: past both its shares
    for ticket in mine:
        ticket.release()

    # the memory share: past it while another client has a turn in flight; a client's lone turn still goes in
    others = [admitted(10, "b")]
    first = admitted(45, "a")
    assert [budget.admit(10, False, "a"), budget.admit(30, True, "a")] == ["peer_memory", "peer_memory"]
    others.append(admitted(30, "c"))
    assert budget.admit(20, False, "d") == "memory"
    first.release()
    assert isinstance(budget.admit(50, False, "a"), Ticket) and budget.held_by("a") == 1


def test_a_client_that_vanishes_frees_its_state(server):
    client = AffectClient(server.target)
    conversation = client.conversation()
    conversation.send("hello")
    assert server.open_conversations() >= 1
    conversation._call.cancel()  # the client goes away without closing
    client.close()
    deadline = time.monotonic() + 10
    while server.open_conversations() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.open_conversations() == 0


def test_health_and_reflection_answer(server):
    channel = grpc.insecure_channel(server.target)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "affect.v1.AffectService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    names = {s.name for s in responses[0].list_services_response.service}
    assert "affect.v1.AffectService" in names and "grpc.health.v1.Health" in names
    channel.close()


def test_bearer_token_is_required_when_set(analyzer):
    with ServerThread(analyzer, token="s3cret") as server:
        with AffectClient(server.target, max_retries=0) as client:
            with pytest.raises(UnauthenticatedError):
                client.analyze("hi")
            with pytest.raises(UnauthenticatedError):
                client.conversation()
        with AffectClient(server.target, token="s3cret") as client, client.conversation() as conversation:
            assert conversation.send("hi").turn_index == 0
        channel = grpc.insecure_channel(server.target)  # health stays open for load balancers
        assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
        # reflection (the services and their schema) needs the token, as the service does
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = [reflection_pb2.ServerReflectionRequest(list_services="")]
        with pytest.raises(grpc.RpcError) as refused:
            list(reflection.ServerReflectionInfo(iter(listing), timeout=10))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        (answer,) = reflection.ServerReflectionInfo(iter(listing), timeout=10,
                                                    metadata=[("authorization", "Bearer s3cret")])
        assert "affect.v1.AffectService" in [s.name for s in answer.list_services_response.service]
        channel.close()


def test_a_token_on_plaintext_is_served_when_tls_is_ended_in_front(analyzer):
    """README recommends TLS ended in front (an ingress, a load balancer), yet a token on a
    non-loopback host was refused with no way round (AFFECT_TOKEN=x affect serve --host 0.0.0.0:
    exit 2). The refusal now names where the token came from and the setting that says TLS is
    ended upstream; with that setting the token is required on plaintext."""
    def serve(*args: str, **env: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0", "--host", "0.0.0.0",
                              *args, "--text-model", "no-such-model"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **env})
        assert out.returncode == 2, out  # the unknown model or the setting: either way before any model loads
        return [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]

    (line,) = serve(AFFECT_TOKEN="s3cret")
    assert "AFFECT_TOKEN without TLS" in line and "--tls-terminated-upstream" in line, line
    (line,) = serve("--token", "s3cret")
    assert "--token without TLS" in line and "--tls-terminated-upstream" in line, line
    for args, env in ((["--tls-terminated-upstream"], {}), ([], {"AFFECT_TLS_TERMINATED_UPSTREAM": "true"})):
        lines = serve(*args, **env, AFFECT_TOKEN="s3cret")  # the settings pass: the unknown model is what stops it
        assert "without TLS" not in "".join(lines) and "no-such-model" in lines[-1], lines
        assert any("accepted because TLS is ended in front" in line for line in lines), lines  # said in the log

    with ServerThread(analyzer, host="0.0.0.0", token="s3cret", tls_terminated_upstream=True) as server:
        with AffectClient(server.target, max_retries=0) as client, pytest.raises(UnauthenticatedError):
            client.list_models()
        with AffectClient(server.target, token="s3cret") as client:
            assert client.list_models() is not None


def test_sigterm_finishes_turns_in_flight_then_exits(tmp_path: Path):
    ready = tmp_path / "port"
    server = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0", "--ready-file", str(ready),
                               "--grace-s", "30", "--batch-max-wait-ms", "300", "--adaptive-batch-wait", "false",
                               "--speech-model", "none", "--face-model", "none"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        deadline = time.monotonic() + 240
        while not (ready.is_file() and ready.read_text()) and time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read().decode()
            time.sleep(0.2)

        async def main():
            async with AsyncAffectClient(f"127.0.0.1:{ready.read_text()}", max_retries=0) as client:
                conversations = [await client.conversation().open() for _ in range(3)]
                in_flight = [asyncio.ensure_future(c.send(f"turn in flight {i}")) for i, c in enumerate(conversations)]
                await asyncio.sleep(0.1)  # the turns are waiting in the 300 ms batch window
                server.send_signal(signal.SIGTERM)
                answers = await asyncio.gather(*in_flight, return_exceptions=True)
                after = []
                for c in conversations:
                    try:
                        await c.send("after shutdown began")
                        after.append("ok")
                    except UnavailableError:
                        after.append("UNAVAILABLE")
                    except Exception as exc:  # noqa: BLE001 - reported below
                        after.append(type(exc).__name__)
                return answers, after

        answers, after = asyncio.run(main())
        assert all(not isinstance(a, BaseException) and a.present == ("text",) for a in answers), answers
        assert all(a != "ok" for a in after), after
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_models_load_stops_cleanly(stop):
    """An operator who stops the server while it loads gets a clean stop: one line that says
    so and exit status 0, as after a drain (SIGTERM ended it with -15, SIGINT in a traceback)."""
    server = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0",
                               "--speech-model", "none", "--face-model", "none"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        for line in server.stdout:  # the text model takes seconds to load after this line
            seen.append(line)
            if "loading the models" in line:
                server.send_signal(stop)
                break
        assert server.wait(timeout=60) == 0, "".join(seen) + server.stdout.read()
        seen += server.stdout.readlines()
    finally:
        if server.poll() is None:
            server.kill()
    after = "".join(seen).split("loading the models", 1)[1].splitlines()[1:]
    assert len(after) == 1 and f"{stop.name} while starting: stopped before serving" in after[0], seen


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads the server's /proc/PID/maps (Linux)")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("on_ray", [[], ["--ray"]], ids=["one-process", "ray"])
def test_a_signal_while_the_libraries_import_stops_cleanly(stop: signal.Signals, on_ray: list[str]) -> None:
    """An orchestrator's SIGTERM in the first seconds, while torch is still being imported (long
    before "loading the models"), stops the server as cleanly as later: one line and exit status
    0. The handler was set only after those imports: SIGTERM ended it with -15 (143 in a shell).
    ``--ray`` alike, the signal arriving long before Ray would start (none is started): it set no
    handler at all, and SIGINT ended in a traceback."""
    server = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0",
                               "--speech-model", "none", "--face-model", "none", *on_ray],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while "libtorch" not in Path(f"/proc/{server.pid}/maps").read_text():  # torch's import has begun
            assert server.poll() is None and time.monotonic() < deadline, server.communicate()[0]
            time.sleep(0.005)
        server.send_signal(stop)
        out = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, out
    (line,) = out.splitlines()
    assert line.endswith(f"INFO affect.server: {stop.name} while starting: stopped before serving"), out


def _cert(folder: Path, name: str = "") -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key: (key, cert)."""
    key, cert = folder / f"key{name}.pem", folder / f"cert{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


def test_an_ipv6_host_is_listened_on(analyzer):
    """``--host ::1`` (or ``::``, the usual dual-stack setting) gave "cannot listen on ::1:PORT": the
    address was written without the brackets an IPv6 literal needs."""
    for host in ("::1", "[::1]"):
        with ServerThread(analyzer, host=host) as server, AffectClient(f"[::1]:{server.running.port}") as client:
            assert client.analyze("hello over IPv6").present == ("text",)


def test_tls_when_configured(analyzer, tmp_path: Path):
    key, cert = _cert(tmp_path)
    with ServerThread(analyzer, tls_cert=str(cert), tls_key=str(key)) as server:
        target = f"localhost:{server.running.port}"
        with AffectClient(target, tls=True, root_certificates=cert.read_bytes()) as client, client.conversation() as conv:
            assert conv.send("over TLS").present == ("text",)
        with AffectClient(target, max_retries=0, timeout=5) as plaintext:  # a plaintext client cannot talk to it
            with pytest.raises(UnavailableError):
                plaintext.analyze("hi")


def test_client_deadline_ends_the_stream_and_frees_state(server):
    from affect_client import DeadlineExceededError

    with AffectClient(server.target, conversation_deadline=1.5) as client:
        conversation = client.conversation()
        assert conversation.send("quick").turn_index == 0
        time.sleep(2.0)
        with pytest.raises(DeadlineExceededError):
            conversation.send("too late")
    deadline = time.monotonic() + 10
    while server.open_conversations() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.open_conversations() == 0


def test_client_package_needs_no_torch():
    probe = "import sys, affect_client; assert not [m for m in ('torch', 'affect', 'numpy') if m in sys.modules], sys.modules.keys()"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_client_retries_unavailable_until_the_server_is_up(analyzer):
    port = _free_port()
    with server_starting_later(analyzer, port, 0.3), AffectClient(f"127.0.0.1:{port}", max_retries=8) as client:
        assert client.analyze("are you there?").present == ("text",)


def test_idle_conversations_expire_and_free_their_state(analyzer):
    """The stream ends DEADLINE_EXCEEDED with the reason ``rules.IDLE_REASON`` in its trailer
    (``rules.ABORT_REASON_TRAILER``), which the client keeps on the error (``.reason``) and resumes
    by (``tests/test_client_idle.py``; here resuming is off, to see the close itself)."""
    from affect_client import DeadlineExceededError
    from affect_proto import rules

    with ServerThread(analyzer, idle_timeout_s=1.0) as server:
        with AffectClient(server.target, resume_turns=0) as client:
            conversation = client.conversation()
            conversation.send("hello")
            deadline = time.monotonic() + 10
            while server.open_conversations() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.open_conversations() == 0
            with pytest.raises(DeadlineExceededError, match="no turn for 1 s") as closed:
                conversation.send("anyone there?")
            assert closed.value.reason == rules.IDLE_REASON
        held = threading.Event()

        def opening_then_nothing():
            yield pb.ConverseRequest(open=pb.OpenConversation())
            held.wait(30)  # the stream stays open, with no turn

        with grpc.insecure_channel(server.target) as channel:  # what the wire says
            with pytest.raises(grpc.RpcError) as raw:
                for _ in pb_grpc.AffectServiceStub(channel).Converse(opening_then_nothing(), timeout=30):
                    pass
            held.set()
        assert raw.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (rules.ABORT_REASON_TRAILER, rules.IDLE_REASON) in tuple(raw.value.trailing_metadata())


def test_a_client_that_reads_no_answer_loses_its_conversation_within_the_idle_limit(analyzer):
    """A client sends turns and never reads: its answers fill its flow-control window and the
    server's next answer waits. The conversation was kept (state, id, slot) past every idle limit;
    now its state is freed within the limit, its slot stays with the stream until the stream
    ends, and when the client reads at last it gets its answers, then DEADLINE_EXCEEDED."""
    stop = threading.Event()
    sent = 0

    def turns_until_stopped():
        nonlocal sent
        yield pb.ConverseRequest(open=pb.OpenConversation())
        while not stop.is_set():
            sent += 1
            yield pb.ConverseRequest(turn=pb.Turn(speaker="c", turn_id="t" * 128, text=b"ok"))

    with ServerThread(analyzer, idle_timeout_s=1.0, max_turns_per_second=1e6) as server:
        # No BDP probing: the client's window stays at gRPC's 64 KiB, as a hostile client keeps it.
        with grpc.insecure_channel(server.target, options=[("grpc.http2.bdp_probe", 0)]) as channel:
            answers = pb_grpc.AffectServiceStub(channel).Converse(turns_until_stopped())
            deadline = time.monotonic() + 30
            while not server.open_conversations() and time.monotonic() < deadline:
                time.sleep(0.05)  # opened (the turns are taken from the iterator before that)
            assert server.open_conversations() == 1
            while server.open_conversations() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert server.open_conversations() == 0, f"the conversation outlived the idle limit ({sent} turns sent)"
            assert server.call(_slots_open(server)) == 1  # the stream still holds its slot
            stop.set()
            read = 0
            with pytest.raises(grpc.RpcError) as ended:
                for _ in answers:
                    read += 1
        assert read > 50  # the window's worth it had not read (64 KiB of answers)
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "read no answer for 1 s" in ended.value.details()
        deadline = time.monotonic() + 10
        while server.call(_slots_open(server)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.call(_slots_open(server)) == 0  # the slot is back once the stream ended
        with AffectClient(server.target) as client, client.conversation() as conversation:
            assert conversation.send("still serving").turn_index == 0


def test_a_stream_that_never_opens_gives_its_slot_back_within_the_opening_deadline(analyzer: Analyzer) -> None:
    """A stream holds its conversation slot from the call on: one that sent no opening held it for
    idle_timeout_s (900 s), and a few addresses of such streams locked every other client out. The
    opening has ``open_timeout_s``; then the stream ends with DEADLINE_EXCEEDED (reason
    ``slow_open``, not ``idle``: there is no conversation to resume) and its slot is free."""
    never = threading.Event()

    def nothing() -> Iterator[bytes]:
        never.wait(60)
        yield b""

    with ServerThread(analyzer, open_timeout_s=1.0, max_conversations_per_peer=1) as server, \
            grpc.insecure_channel(server.target) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as ended:
            list(_raw_converse(channel)(nothing(), timeout=30))
        took = time.monotonic() - started
        never.set()
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert ended.value.details() == "no opening message (OpenConversation) within 1 s of the call"
        assert (rules.ABORT_REASON_TRAILER, "slow_open") in tuple(ended.value.trailing_metadata())
        assert 0.9 < took < 5, took
        deadline = time.monotonic() + 10
        while server.call(_slots_open(server)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with AffectClient(server.target, max_retries=0) as client, client.conversation() as conversation:
            assert conversation.send("Is anyone there?").turn_index == 0  # its one slot is free again
            time.sleep(1.5)  # past the opening's deadline: an opened conversation has idle_timeout_s
            assert conversation.send("Still here.").turn_index == 1


def _raw_converse(channel: grpc.Channel) -> Callable[..., Iterator[pb.ConverseResponse]]:
    """Converse with each request given as its bytes: the test holds no request message."""
    return channel.stream_stream("/affect.v1.AffectService/Converse", request_serializer=lambda data: data,
                                 response_deserializer=pb.ConverseResponse.FromString)


async def _request_messages() -> int:
    """ConverseRequests, and the messages inside one, alive in this process (server and test)."""
    import gc

    gc.collect()
    kinds = (pb.ConverseRequest, pb.OpenConversation, pb.ConversationOptions)
    return sum(isinstance(obj, kinds) for obj in gc.get_objects())


def test_a_client_that_never_reads_its_first_answer_is_told_why_its_conversation_closed(
        analyzer: Analyzer, caplog: pytest.LogCaptureFixture) -> None:
    """A client whose stream window stays shut (it reads nothing, not even the opening's answer):
    the abort at the idle limit sent the headers a second time (gRPC counts them sent with the
    first answer, still waiting), which gRPC refused with an ERROR and its stack; the stream then
    held nothing of the server's limits and never got a status. Now it keeps its slot until it
    ends, and once it reads it gets its answer, then DEADLINE_EXCEEDED (reason ``unread``)."""
    from tests._h2raw import RawConnection

    opening = pb.ConverseRequest(open=pb.OpenConversation()).SerializeToString()
    with caplog.at_level(logging.ERROR), ServerThread(analyzer, idle_timeout_s=1.0) as server:
        running = server.running
        assert running is not None
        connection = RawConnection("127.0.0.1", running.port, stream_window=0)
        try:
            stream = connection.open_stream("/affect.v1.AffectService/Converse", opening)
            deadline = time.monotonic() + 10
            while not server.open_conversations() and time.monotonic() < deadline:
                time.sleep(0.02)
            while server.open_conversations() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.open_conversations() == 0  # closed at the idle limit
            assert server.call(_slots_open(server)) == 1  # the stream still holds its slot
            assert connection.ended(stream, 0.5) is None  # its answer and status wait on its window
            connection.open_window(stream, 2**20)
            ended = connection.ended(stream, 10)
        finally:
            connection.close()
        deadline = time.monotonic() + 10
        while server.call(_slots_open(server)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.call(_slots_open(server)) == 0
    assert ended is not None, "no status"
    assert b"grpc-status\x014" in ended  # DEADLINE_EXCEEDED (gRPC writes these trailers uncompressed)
    assert b"the client read no answer for 1 s; the conversation was closed" in ended and b"unread" in ended
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_an_open_conversation_keeps_nothing_of_its_opening(analyzer: Analyzer) -> None:
    """The stream kept its opening message for as long as it waited for a turn (in a view into
    it, its options, and in gRPC's request iterator until the next message): an opening carrying
    15 MiB of unknown fields, gzipped to a few KB on the wire, held 15 MiB a conversation for up
    to idle_timeout_s. Only the option values are kept now."""
    padded = pb.ConverseRequest(open=pb.OpenConversation(
        options=pb.ConversationOptions(omit_modality_results=True, event_speakers=["caller"]))).SerializeToString()
    padded += b"\xfa\x07\x80\x80\x04" + bytes(2**16)  # an unknown field 127 of 64 KiB
    with ServerThread(analyzer) as server, grpc.insecure_channel(server.target) as channel:
        before = server.call(_request_messages())
        feeds: list[queue.Queue] = []
        streams = []
        for _ in range(3):
            feeds.append(queue.Queue())
            feeds[-1].put(padded)
            streams.append(_raw_converse(channel)(iter(feeds[-1].get, None), timeout=60))
            assert next(streams[-1]).WhichOneof("kind") == "opened"
        assert server.open_conversations() == 3
        held = server.call(_request_messages()) - before
        feeds[0].put(pb.ConverseRequest(turn=pb.Turn(text=b"Hello?", speaker="caller")).SerializeToString())
        answer = next(streams[0]).result
        assert answer.HasField("fused") and not answer.modalities  # the options still apply
        for feed in feeds:
            feed.put(None)
        for stream in streams:
            assert list(stream) == []
    assert held == 0, f"{held} request messages held by 3 open conversations"


async def _slots_open(server) -> int:
    return server.running.servicer.slots.open


# ---------------------------------------------------------------------------- issue 18: bugs found under attack

def test_a_duplicate_conversation_id_leaves_the_open_conversation_alone(server):
    from affect_client import APIStatusError

    with AffectClient(server.target, max_retries=0) as client, client.conversation("dup-1") as first:
        assert first.send("hello").turn_index == 0
        for _ in range(2):  # the refused stream's clean-up must not free the id for a third one
            with pytest.raises(APIStatusError) as refused:
                client.conversation("dup-1")
            assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
        time.sleep(0.2)
        assert "dup-1" in server.call(_ids(server))
        assert first.send("still mine").turn_index == 1


async def _ids(server) -> set[str]:
    return {conversation_id for _client, conversation_id in server.running.servicer.conversations}


def test_conversation_ids_are_each_clients_own(analyzer):
    """Two clients (over IPv4 and IPv6 loopback: two addresses) open the same id: each gets its
    own conversation, so ALREADY_EXISTS cannot tell one client which ids another has open; a
    client's own second open of the id is still refused."""
    from affect_client import APIStatusError

    with ServerThread(analyzer, host="localhost") as server:
        port = server.running.port
        with AffectClient(f"127.0.0.1:{port}", max_retries=0) as v4, AffectClient(f"[::1]:{port}", max_retries=0) as v6:
            with v4.conversation("+15550100") as first, v6.conversation("+15550100") as second:
                assert first.send("hello").turn_index == 0
                assert second.send("hi").turn_index == 0
                assert first.send("again").turn_index == 1  # the two do not share a history
                assert server.open_conversations() == 2
                with pytest.raises(APIStatusError) as refused:
                    v6.conversation("+15550100")
                assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
                assert second.send("still here").turn_index == 1


# ---------------------------------------------------------------------------- a resume takes its conversation over


class _Stream:
    """A Converse stream driven message by message, as a client of its own drives it: the Python
    client sets ``OpenConversation.resume`` only when it resumes, so these tests set it here."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self._requests: queue.Queue = queue.Queue()
        self._answers = pb_grpc.AffectServiceStub(self._channel).Converse(iter(self._requests.get, None), timeout=120)

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc) -> None:
        self._requests.put(None)
        self._answers.cancel()
        self._channel.close()

    def open(self, conversation_id: str, *, resume: bool = False, resume_token: str = "") -> pb.ConversationOpened:
        self._requests.put(pb.ConverseRequest(open=pb.OpenConversation(conversation_id=conversation_id, resume=resume,
                                                                       resume_token=resume_token)))
        return next(self._answers).opened

    def turn(self, text: str) -> pb.TurnResult:
        self._requests.put(pb.ConverseRequest(turn=pb.Turn(text=text.encode(), speaker="caller")))
        answer = next(self._answers)
        assert answer.WhichOneof("kind") == "result", answer
        return answer.result

    def end(self) -> grpc.RpcError:
        """The status the stream ended with (the answers still unread are read first)."""
        with pytest.raises(grpc.RpcError) as ended:
            for _ in self._answers:
                pass
        return ended.value


def _taken_over(server) -> float | None:
    return server.running.servicer.metrics.registry.get_sample_value(
        "affect_refused_total", {"code": "ABORTED", "reason": "taken_over"})


def test_a_resume_takes_over_its_own_conversation_and_a_fresh_open_is_still_refused(analyzer: Analyzer,
                                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """An opening without ``resume`` of an id this client has open is refused ALREADY_EXISTS and
    changes nothing; so is a resume without the open stream's ``resume_token`` (none, or a wrong
    one: a caller sharing the address that knows the id), with the same message. With ``resume``
    and the token it is admitted at once: the stream that held the id ends with ABORTED (taken
    over), its state and slot are freed, and the new stream starts a new state, with a new token.
    No token is logged."""
    caplog.set_level(logging.DEBUG)
    with ServerThread(analyzer, max_turns_per_second=1000) as server:
        with _Stream(server.target) as old, _Stream(server.target) as new:
            first = old.open("tk-1")
            assert first.conversation_id == "tk-1" and len(first.resume_token) >= 22  # 128 bits, url-safe base64
            assert old.turn("Hello, my parcel never came.").turn_index == 0
            openings = [(False, ""), (True, ""), (True, "x" * len(first.resume_token)), (True, first.resume_token[:-1]),
                        (True, "é"), (False, first.resume_token)]  # (resume, resume_token); the last: a fresh opening
            details = set()
            for turn_index, (resume, sent) in enumerate(openings, start=1):
                with _Stream(server.target) as other, pytest.raises(grpc.RpcError) as refused:
                    other.open("tk-1", resume=resume, resume_token=sent)
                assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, (resume, sent)
                details.add(refused.value.details())
                assert old.turn("Still mine.").turn_index == turn_index  # the refused opening changed nothing
            assert len(details) == 1  # a resume without the token is told what a fresh opening is
            assert _taken_over(server) is None and server.open_conversations() == 1

            second = new.open("tk-1", resume=True, resume_token=first.resume_token)
            assert second.conversation_id == "tk-1" and second.resume_token not in ("", first.resume_token)
            ended = old.end()
            assert ended.code() == grpc.StatusCode.ABORTED and "taken over" in ended.details()
            assert (rules.ABORT_REASON_TRAILER, rules.TAKEN_OVER_REASON) in tuple(ended.trailing_metadata())
            assert new.turn("I'm back.").turn_index == 0  # a new state: the client sends again what it needs
            assert _taken_over(server) == 1
            assert server.open_conversations() == 1
            assert new.turn("Still here.").turn_index == 1
            deadline = time.monotonic() + 10
            while server.call(_slots_open(server)) > 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.call(_slots_open(server)) == 1  # the old stream gave its slot back
        deadline = time.monotonic() + 10
        while server.call(_slots_open(server)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.call(_slots_open(server)) == 0 and server.open_conversations() == 0
        assert server.running.servicer.budget.turns == 0  # no turn's ticket left behind
    assert any("taken over" in r.getMessage() for r in caplog.records)  # the server's logs were captured
    assert not any(token in caplog.text for token in (first.resume_token, second.resume_token))


def test_a_client_whose_resume_answer_was_lost_resumes_again_with_the_token_it_holds(analyzer: Analyzer) -> None:
    """A connection may drop before a resume's ConversationOpened arrives: the client never read the
    new stream's token and resumes again with the one it holds. The stream that resume opened was
    admitted with that token, so it is taken over by it too (only that client ever had it); a token
    never given for this conversation is still refused."""
    with ServerThread(analyzer, max_turns_per_second=1000) as server:
        with _Stream(server.target) as old, _Stream(server.target) as lost, _Stream(server.target) as again:
            held = old.open("tk-5").resume_token
            assert lost.open("tk-5", resume=True, resume_token=held).resume_token != held  # its answer "lost"
            assert old.end().code() == grpc.StatusCode.ABORTED
            with _Stream(server.target) as stranger, pytest.raises(grpc.RpcError) as refused:
                stranger.open("tk-5", resume=True, resume_token=held[::-1])
            assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
            assert lost.turn("Still the lost stream's.").turn_index == 0
            assert again.open("tk-5", resume=True, resume_token=held).conversation_id == "tk-5"
            ended = lost.end()
            assert ended.code() == grpc.StatusCode.ABORTED and "taken over" in ended.details()
            assert again.turn("I'm back, again.").turn_index == 0
            assert _taken_over(server) == 2 and server.open_conversations() == 1


def test_a_turn_in_flight_when_its_conversation_is_taken_over_is_counted_once(analyzer: Analyzer) -> None:
    """The old stream's turn waits for a worker to decode it (the workers are held) while a resume
    takes its conversation over: it is read against no state, and its stream ends ABORTED (taken
    over) without its answer. It was counted twice: taken over, and refused ABORTED ``closed``
    for the answer that was never sent."""
    gate = threading.Event()
    with ServerThread(analyzer, max_turns_per_second=1000) as server:
        running = server.running
        assert running is not None
        with _Stream(server.target) as old, _Stream(server.target) as new:
            token = old.open("tk-4").resume_token
            held = [running.executor.submit(gate.wait, 60) for _ in range(server.config.workers)]
            try:
                old._requests.put(pb.ConverseRequest(turn=pb.Turn(text=b"waiting for a worker", speaker="caller")))
                deadline = time.monotonic() + 10
                while running.servicer.budget.turns == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert running.servicer.budget.turns == 1  # admitted: its decoding waits for a worker
                assert new.open("tk-4", resume=True, resume_token=token).conversation_id == "tk-4"
            finally:
                gate.set()
            assert all(h.result(10) for h in held)
            ended = old.end()
            assert ended.code() == grpc.StatusCode.ABORTED and "taken over" in ended.details()
            assert new.turn("I'm back.").turn_index == 0
        assert _taken_over(server) == 1
        registry = running.servicer.metrics.registry
        assert registry.get_sample_value("affect_refused_total", {"code": "ABORTED", "reason": "closed"}) is None
        assert running.servicer.budget.turns == 0  # its ticket given back


def test_a_client_at_its_conversation_limit_may_still_resume_its_own_conversation(analyzer):
    """The stream's slot was claimed before its opening was read: a client holding its
    ``max_conversations_per_peer`` could not take over its own conversation from a stream its
    broken connection left (the takeover frees that stream's slot), and stayed locked out until the
    server learnt the connection was dead. The opening of such a stream is read in a spare slot,
    one at a time per client: a resume of a conversation this client holds, with its stream's
    token, is admitted; anything else is refused as before (a resume of the id without the token
    too, as its opening without ``resume`` is)."""
    with ServerThread(analyzer, max_conversations_per_peer=1, max_turns_per_second=1000) as server:
        with _Stream(server.target) as old:  # each stream starts when made: one at a time here
            token = old.open("tk-3").resume_token
            assert old.turn("Hello, my parcel never came.").turn_index == 0
            for opening in ({"conversation_id": "another"}, {"conversation_id": "not-held", "resume": True},
                            {"conversation_id": "tk-3", "resume": True},
                            {"conversation_id": "tk-3", "resume": True, "resume_token": token[::-1]}):
                with _Stream(server.target) as refused_stream, pytest.raises(grpc.RpcError) as refused:
                    refused_stream.open(**opening)
                assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "this client has 1 conversations open" in refused.value.details()
            assert old.turn("Still mine.").turn_index == 1

            with _Stream(server.target) as new:
                assert new.open("tk-3", resume=True, resume_token=token).conversation_id == "tk-3"
                ended = old.end()
                assert ended.code() == grpc.StatusCode.ABORTED and "taken over" in ended.details()
                assert new.turn("I'm back.").turn_index == 0
                deadline = time.monotonic() + 10
                while server.call(_slots_open(server)) > 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert server.call(_slots_open(server)) == 1 and not server.running.servicer.slots._spares
    slots = ConversationSlots(3, per_peer=1)
    assert [slots.acquire("a"), slots.acquire("a")] == [None, "peer"]
    assert [slots.acquire_spare("a"), slots.acquire_spare("a")] == [True, False]  # one at a time per client
    slots.spare_done("a")
    assert slots.acquire_spare("a") and not slots.acquire_spare("b")  # within the server's limit
    for _ in range(3):
        slots.release("a")
    slots.spare_done("a")
    assert slots.open == 0 and not slots._by_peer and not slots._spares


def test_another_client_cannot_take_a_conversation_over(analyzer):
    """A resume of the same id from another address (IPv6 loopback beside IPv4) opens that
    client's own conversation of the id and leaves the first client's stream alone."""
    with ServerThread(analyzer, host="localhost", max_turns_per_second=1000) as server:
        port = server.running.port
        with _Stream(f"127.0.0.1:{port}") as v4, _Stream(f"[::1]:{port}") as v6:
            v4.open("+15550100")
            assert v4.turn("hello").turn_index == 0
            assert v6.open("+15550100", resume=True).conversation_id == "+15550100"
            assert v6.turn("hi").turn_index == 0  # its own conversation, not the other's state
            assert v4.turn("still mine").turn_index == 1
            assert server.open_conversations() == 2 and _taken_over(server) is None


def test_a_resume_takes_over_a_stream_whose_answers_wait_unread(analyzer):
    """The old stream's client stopped reading (a connection that died with answers on their way):
    the server's next answer waits on the flow-control window, far from its idle limit. A resume
    takes the conversation over at once; the old stream's handler ends then, though its client
    still reads nothing (the stream keeps its slot until it really ends, as for the idle limit),
    and the stream ends with ABORTED behind the answers it had not read."""
    stop = threading.Event()

    def turns_until_stopped():
        yield pb.ConverseRequest(open=pb.OpenConversation(conversation_id="tk-2"))
        while not stop.is_set():
            yield pb.ConverseRequest(turn=pb.Turn(speaker="c", turn_id="t" * 128, text=b"ok"))

    with ServerThread(analyzer, idle_timeout_s=600, max_turns_per_second=1e6) as server:
        registry = server.running.servicer.metrics.registry
        # No BDP probing: the client's window stays at gRPC's 64 KiB.
        with grpc.insecure_channel(server.target, options=[("grpc.http2.bdp_probe", 0)]) as channel:
            answers = pb_grpc.AffectServiceStub(channel).Converse(turns_until_stopped())
            token = next(answers).opened.resume_token
            deadline = time.monotonic() + 60
            seen, since = -1.0, time.monotonic()
            while time.monotonic() < deadline:  # until the server answers no more: its write waits
                now = registry.get_sample_value("affect_turns_total") or 0.0
                if now != seen:
                    seen, since = now, time.monotonic()
                elif now > 50 and time.monotonic() - since > 1.0:
                    break
                time.sleep(0.05)
            assert seen > 50, seen  # more than a window's worth answered, the rest waits
            with _Stream(server.target) as new:
                assert new.open("tk-2", resume=True, resume_token=token).conversation_id == "tk-2"
                assert new.turn("I'm back.").turn_index == 0
                assert _taken_over(server) == 1 and server.open_conversations() == 1
                deadline = time.monotonic() + 10
                while registry.get_sample_value("affect_active_conversations") > 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert registry.get_sample_value("affect_active_conversations") == 1  # nothing read meanwhile
                assert server.call(_slots_open(server)) == 2
                stop.set()
                with pytest.raises(grpc.RpcError) as ended:
                    for _ in answers:
                        pass
                assert ended.value.code() == grpc.StatusCode.ABORTED and "taken over" in ended.value.details()
                assert (rules.ABORT_REASON_TRAILER, rules.TAKEN_OVER_REASON) in tuple(ended.value.trailing_metadata())
                deadline = time.monotonic() + 10
                while server.call(_slots_open(server)) > 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert server.call(_slots_open(server)) == 1


def test_max_text_chars_is_enforced(analyzer):
    with ServerThread(analyzer, max_text_chars=50) as server:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            with pytest.raises(TurnRefusedError) as refused:
                conversation.send("x" * 60)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and refused.value.field == "turn.text"
            assert "50" in refused.value.details
            assert conversation.send("short enough").turn_index == 0


def test_conversation_ids_with_control_characters_are_refused_and_never_logged(server, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="affect.server")
    with AffectClient(server.target, max_retries=0) as client:
        with pytest.raises(InvalidArgumentError, match="open.conversation_id"):
            client.conversation("abc\n2030-01-01 INFO affect.server: FORGED line")
        with pytest.raises(InvalidArgumentError, match="open.conversation_id"):
            client.conversation("abc\u202eevil")  # right-to-left override
    assert not any("FORGED" in r.getMessage() or "\n" in r.getMessage() for r in caplog.records)


def test_an_unauthenticated_body_is_never_parsed(analyzer):
    with ServerThread(analyzer, token="s3cret") as server, grpc.insecure_channel(server.target) as channel:
        for method in ("/affect.v1.AffectService/Analyze", "/affect.v1.AffectService/ListModels"):
            call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            with pytest.raises(grpc.RpcError) as refused:
                call(b"\xff\xff\xff\xff not a protobuf message", timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method, refused.value)


def test_unauthenticated_refusals_are_counted_with_the_others(analyzer):
    """A call refused for its token is in ``affect_refused_total`` under UNAUTHENTICATED, by
    whether a token came at all; the health checks it leaves open are not counted."""
    with ServerThread(analyzer, token="s3cret", metrics_port=_free_port()) as server:
        with AffectClient(server.target, max_retries=0) as client:
            with pytest.raises(UnauthenticatedError):
                client.analyze("hi")
            with pytest.raises(UnauthenticatedError):
                client.conversation()
        with AffectClient(server.target, token="guess", max_retries=0) as client:
            with pytest.raises(UnauthenticatedError):
                client.analyze("hi")
        with grpc.insecure_channel(server.target) as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        refused = 'affect_refused_total{code="UNAUTHENTICATED",reason='
        assert _metric(server, refused + '"no_token"}') == 2
        assert _metric(server, refused + '"wrong_token"}') == 1
        assert _metric(server, "affect_refused_total") == 3


def test_start_up_errors_are_one_line_before_any_model_loads(tmp_path: Path):
    """An unknown model is given too: the error shown is the start-up one, so it came first."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        cases = [
            (["--port", str(held.getsockname()[1])], "cannot listen"),
            (["--tls-cert", str(tmp_path / "absent.pem"), "--tls-key", str(tmp_path / "absent.key")], "--tls-cert"),
            (["--host", "0.0.0.0", "--token", "s3cret"], "--token without TLS"),
            (["--tls-terminated-upstream", "--tls-cert", str(_cert(tmp_path, "c")[1]), "--tls-key",
              str(tmp_path / "keyc.pem")], "not both"),
            (["--face-min-fraction", "0.01"], "--face-min-fraction: must be between 0.05 and 1"),
            (["--face-full-search-every", "-1"], "--face-full-search-every: must be 0 (the default) or more"),
            (["--batch-concurrency", "0"], "--batch-concurrency: must be at least 1"),
            (["--model-threads", "-3"], "--model-threads: must be 0 (cores // workers) or more"),  # it served on cores // workers
            (["--speech-adapt", "true", "--speech-model", "none"], "--speech-adapt needs a speech model"),
            (["--text-context-weight", "1.5"], "--text-context-weight: must be between 0 and 1"),
            (["--text-prior", "neutral=0.8,calm=0.2"], "--text-prior: text prior names 'calm', which is not an emotion"),
            (["--port", "99999"], "--port: must be between 0 and 65535"),  # it once served on 34463
            (["--metrics-port", "-1"], "--metrics-port: must be between 0 and 65535"),
            (["--workers", "two"], "--workers: must be a whole number"),
            (["--max-text-chars", "20000"], "--max-text-chars: must be at most 10000"),  # accepted, and 14,400 still refused
            (["--tls-cert", str(_cert(tmp_path, "a")[1]), "--tls-key", str(_cert(tmp_path, "b")[0])],
             "are not a certificate and its key"),  # gRPC said only "cannot listen", after its own error lines
            (["--metrics-port", str(held.getsockname()[1])], "cannot serve metrics"),  # a traceback after loading
            (["--ready-file", str(tmp_path / "absent" / "port.txt")], "its folder does not exist"),  # the same
        ]
        for args, words in cases:
            out = subprocess.run([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0", *args,
                                  "--text-model", "no-such-model"], capture_output=True, text=True, timeout=120)
            lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
            assert out.returncode == 2, (args, lines)  # a usage error, as the other commands give
            assert len(lines) == 1 and words in lines[0], (args, lines)


def test_an_unknown_weights_name_is_a_settings_error_before_any_model_loads() -> None:
    """``affect serve --face-model bogus`` was refused by the library as the models loaded ("loading
    the models" logged first), as "affect: error: ..."; it is one line naming the flag (or the
    variable) that gave it, as the other settings' mistakes are, exit status 2, plain and on Ray
    alike (``configured_model_ids``, which Ray's start calls too, before Ray starts)."""
    from affect.face import FaceWeights

    for args, env, given in ((["--face-model", "bogus"], {}, "--face-model"),
                             (["--ray", "--face-model", "bogus"], {}, "--face-model"),
                             ([], {"AFFECT_FACE_MODEL": "bogus"}, "AFFECT_FACE_MODEL")):
        out = subprocess.run([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0", *args],
                             capture_output=True, text=True, timeout=120, env={**os.environ, **env})
        lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        assert out.returncode == 2, (args, lines)
        assert lines == [f"affect serve: {given}: unknown FaceWeights 'bogus'; known (name / id): {FaceWeights.known()}"], \
            (args, lines)


def test_the_servers_face_detector_choices_are_the_librarys() -> None:
    """The server names them by the library's option rules, without loading the detectors at
    start-up; the names a type checker holds callers to are the same, and each makes a detector."""
    from typing import get_args

    from affect.face._detect import DetectorName, make_detector
    from affect_server.config import FACE_DETECTORS, ServerConfig

    assert get_args(DetectorName) == FACE_DETECTORS
    assert all(make_detector(name) is not None for name in FACE_DETECTORS)
    options = ServerConfig(face_detector="blazeface+mtcnn").encoder_options()
    assert options["face"]["detector"] == "blazeface+mtcnn"
    assert "detector" not in ServerConfig().encoder_options()["face"]  # the library's default stays the default


def test_a_boolean_server_option_is_a_flag_alone_or_takes_a_value():
    """``affect serve --speech-adapt`` (as the README writes it) turns adaptation on; a value
    (``true``/``false``) is still read, and a flag wins over the environment."""
    import argparse

    from affect_server.config import ServerConfig

    parser = argparse.ArgumentParser()
    ServerConfig.add_arguments(parser)

    def read(*argv: str, env: dict[str, str] | None = None) -> ServerConfig:
        return ServerConfig.from_args(parser.parse_args(list(argv)), env=env or {})

    assert read("--speech-adapt").speech_adapt is True
    assert read("--speech-adapt", "false").speech_adapt is False
    assert read("--speech-adapt", "--workers", "2").speech_adapt is True  # the next flag is not taken as its value
    assert read().speech_adapt is False and read(env={"AFFECT_SPEECH_ADAPT": "1"}).speech_adapt is True
    assert read("--speech-adapt", "no", env={"AFFECT_SPEECH_ADAPT": "1"}).speech_adapt is False
    assert read("--workers", "3").workers == 3  # options with values are unchanged
    with pytest.raises(SystemExit):
        parser.parse_args(["--workers"])


def test_every_server_option_says_what_it_does_in_serve_help():
    """``affect serve --help`` showed only ``(env ..., default 0)`` for every setting: a default
    such as 0 or -1 that stands for something else (cores // workers, the weights' own value)
    could not be read from it."""
    import argparse
    import subprocess
    import sys
    from dataclasses import fields

    from affect_server.cli import build_parser
    from affect_server.config import ServerConfig

    serve = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["serve"]
    helps = {flag: action.help or "" for action in serve._actions for flag in action.option_strings}
    assert {f.name for f in ServerConfig.settings()} == {f.name for f in fields(ServerConfig)} - {"_given_by"}
    for f in ServerConfig.settings():
        flag = "--" + f.name.replace("_", "-")
        about = helps[flag].split(f"(env AFFECT_{f.name.upper()}, default")[0].strip()
        assert len(about) > 10, f"{flag} says nothing of what it does: {helps[flag]!r}"
    shown = subprocess.run([sys.executable, "-m", "affect_server.cli", "serve", "--help"], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "1000"}, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "0: cores // workers" in shown.stdout and "-1: the text weights' own value" in shown.stdout


def test_where_a_setting_was_given_survives_a_replaced_config():
    """A refusal names where the token came from (``--token`` or ``AFFECT_TOKEN``), kept on the
    config: as a hidden attribute, it was lost by ``dataclasses.replace`` (the message fell back to
    "a token"); as a field, it is kept, and it is no setting of its own nor part of equality."""
    import argparse
    from dataclasses import replace

    from affect_server.config import ServerConfig

    by_variable = ServerConfig.from_args(env={"AFFECT_TOKEN": "s3cret"})
    by_flag = ServerConfig.from_args(argparse.Namespace(token="s3cret"), env={})
    for config, source in ((by_variable, "AFFECT_TOKEN"), (by_flag, "--token")):
        moved = replace(config, host="0.0.0.0")
        assert moved.given_by("token") == source and moved.given_by("host") is None
        with pytest.raises(SystemExit, match=f"^affect serve: {source} without TLS would send the token in clear text"):
            moved.check()
        assert moved == ServerConfig(host="0.0.0.0", token="s3cret")
    with pytest.raises(SystemExit, match="^affect serve: a token without TLS"):
        ServerConfig(host="0.0.0.0", token="s3cret").check()  # built in code: no source to name
    assert "_given_by" not in ServerConfig.environment_variables() and "s3cret" not in repr(by_flag._given_by)


@pytest.mark.parametrize("setting", [{"heavy_audio_seconds": float("nan")}, {"idle_timeout_s": -1.0},
                                     {"batch_max_wait_ms": float("inf")}, {"batch_max_size": 0},
                                     {"heavy_image_pixels": 0}, {"max_turns_per_second": float("inf")},
                                     {"model_threads": -3}, {"open_timeout_s": 0.0}])
def test_every_numeric_server_setting_is_checked_before_start(setting):
    from affect_server.config import ServerConfig

    name = next(iter(setting))
    with pytest.raises(SystemExit, match=name):
        ServerConfig(**setting).check()
    ServerConfig().check()  # the defaults pass


def test_the_server_caps_opencvs_own_decoder_at_the_librarys_pixel_limit():
    """Behind the header check, OpenCV itself refuses to decode past the per-image limit in a
    server process (set when the server package is imported, before cv2 is; an operator's own
    value stands)."""
    script = (
        "import os, affect_server, cv2, numpy as np\n"
        "from affect.face._input import MAX_PIXELS\n"
        "assert os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'] == str(MAX_PIXELS)\n"
        "side = int(MAX_PIXELS ** 0.5) + 10\n"
        "png = cv2.imencode('.png', np.zeros((side, side), np.uint8))[1]\n"
        "try:\n"
        "    cv2.imdecode(png, 0)\n"
        "except cv2.error:\n"
        "    print('refused')\n"
        "print(cv2.imdecode(cv2.imencode('.png', np.zeros((480, 640), np.uint8))[1], 0).shape)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "(480,", "640)"], out.stdout


def test_the_servers_text_prior_reaches_the_text_encoder():
    """``--text-prior`` is handed to the text encoder as the library reads it; left at "default",
    nothing is handed over and the library's default applies."""
    from affect_server.config import ServerConfig

    assert "text" not in ServerConfig().encoder_options()
    assert ServerConfig(text_prior="trained").encoder_options()["text"] == {"prior": "trained"}
    options = ServerConfig(text_prior="neutral=0.9,anger=0.1", text_context_weight=0.0).encoder_options()
    assert options["text"] == {"prior": {"neutral": 0.9, "anger": 0.1}, "context_weight": 0.0}
    with pytest.raises(SystemExit, match="^affect serve: text_prior needs a text model, and text_model is none$"):
        ServerConfig(text_prior="uniform", text_model="none").check()  # built in code: its settings' names
    given = ServerConfig.from_args(env={"AFFECT_TEXT_PRIOR": "uniform", "AFFECT_TEXT_MODEL": "none"})
    with pytest.raises(SystemExit, match="^affect serve: AFFECT_TEXT_PRIOR needs a text model, and AFFECT_TEXT_MODEL is none$"):
        given.check()


def _long_turn_server(tmp_path: Path, grace: float) -> tuple[subprocess.Popen, str]:
    """A speech-only server whose batch window gathers the turns of 8 conversations into one
    model call of about half a minute (8 x 110 s of real speech)."""
    ready = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "serve", "--port", "0", "--ready-file", str(ready),
                             "--grace-s", str(grace), "--text-model", "none", "--face-model", "none",
                             "--heavy-audio-seconds", "1000", "--batch-max-wait-ms", "1000", "--adaptive-batch-wait", "false",
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (ready.is_file() and ready.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    return proc, f"127.0.0.1:{ready.read_text()}"


def _send_long_turns(target: str, data_root: Path) -> list[threading.Thread]:
    import numpy as np
    import soundfile as sf

    from affect_client import Audio

    clips = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[:32]
    speech = np.concatenate([sf.read(str(c), dtype="float32")[0] for c in clips])[: 110 * 16_000]
    pcm = (speech * 32767).astype("<i2").tobytes()

    def one() -> None:
        try:
            with AffectClient(target, max_retries=0, turn_timeout=120) as client, client.conversation() as conversation:
                conversation.send(audio=Audio(pcm, pb.PCM_S16LE, sample_rate_hz=16_000))
        except Exception:  # noqa: BLE001 - the server goes away under it: that is the point
            pass

    threads = [threading.Thread(target=one, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    return threads


def test_shutdown_ends_within_the_grace_period_even_with_a_long_model_call(tmp_path: Path, data_root):
    grace = 2.0
    proc, target = _long_turn_server(tmp_path, grace)
    try:
        _send_long_turns(target, data_root)
        time.sleep(3.0)  # the batch window (1 s) has closed: one long model call is running
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace + 30)
        assert time.monotonic() - signalled < grace + 5
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_second_sigterm_stops_at_once(tmp_path: Path, data_root):
    proc, target = _long_turn_server(tmp_path, grace=60)
    try:
        _send_long_turns(target, data_root)
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert time.monotonic() - signalled < 5
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sync_conversation_retries_unavailable_until_the_server_is_up(analyzer):
    port = _free_port()
    holder = {}

    def start_later():
        time.sleep(0.3)
        holder["server"] = ServerThread(analyzer, port=port).__enter__()

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        with AffectClient(f"127.0.0.1:{port}", max_retries=8) as client, client.conversation() as conversation:
            assert conversation.send("are you there?").turn_index == 0
    finally:
        thread.join()
        holder["server"].__exit__(None, None, None)


def test_busy_refusals_carry_a_hint_and_are_retried_when_allowed(analyzer):
    with ServerThread(analyzer, max_turns_per_second=1.0, max_analyze_per_second_per_peer=1.0) as server:
        with AffectClient(server.target, max_retries=0, busy_retries=0) as client:
            client.analyze("first")
            with pytest.raises(TurnRefusedError) as refused:  # as a turn refused as busy in a conversation
                client.analyze("second, too soon")
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.field == "turn"
            assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 1.0
            patient = client.with_options(busy_retries=3)
            assert [patient.analyze(f"call {i}").turn_index for i in range(3)] == [0, 0, 0]
            with patient.conversation() as conversation:
                assert [conversation.send(f"turn {i}").turn_index for i in range(5)] == [0, 1, 2, 3, 4]
            with client.conversation() as impatient:
                with pytest.raises(TurnRefusedError) as turn_refused:
                    for i in range(5):
                        impatient.send(f"turn {i}")
                assert turn_refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert turn_refused.value.retry_after is not None


def test_threads_sharing_a_conversation_each_get_their_own_answers(server):
    """Answers come back in order on one stream: threads sharing a conversation take turns (11
    of 45 answers once went to another thread's turn on a loaded machine; on an idle one the race
    is rare, so this test guards the contract more than it catches the race)."""
    got: dict[str, str] = {}
    with AffectClient(server.target) as client, client.conversation() as conversation:
        def run(k: int) -> None:
            for i in range(15):
                turn_id = f"thread{k}-turn{i}"
                got[turn_id] = conversation.send(f"Turn {i} from thread {k}: my parcel is late.", turn_id=turn_id).turn_id

        threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(got) == 45 and all(answer == sent for sent, answer in got.items()), got


def test_tasks_sharing_an_async_conversation_each_get_their_own_answers(server):
    """The same for asyncio tasks (5 of 6 once waited out their timeout), and a second ``open()``
    of an open conversation opens nothing new."""
    async def main() -> tuple[list[str], int, int]:
        async with AsyncAffectClient(server.target) as client:
            async with client.conversation() as conversation:
                answers = await asyncio.gather(*(conversation.send(f"Turn {i}: where is it?", turn_id=f"t{i}")
                                                 for i in range(6)))
                assert await conversation.open() is conversation
                open_now = server.open_conversations()
            deadline = time.monotonic() + 10
            while server.open_conversations() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return [a.turn_id for a in answers], open_now, server.open_conversations()

    turn_ids, open_now, open_after = asyncio.run(main())
    assert turn_ids == [f"t{i}" for i in range(6)]
    assert (open_now, open_after) == (1, 0)


def test_a_token_is_never_sent_in_clear_text_off_this_machine():
    from affect_client import AffectClientError

    for make in (AffectClient, AsyncAffectClient):
        for target in ("10.1.2.3:50051", "dns:///example.com:443"):
            with pytest.raises(AffectClientError, match="clear text"):
                make(target, token="s3cret")
    AffectClient("localhost:50051", token="s3cret").close()  # loopback, as the server allows it
    AffectClient("example.com:443", token="s3cret", tls=True).close()
    for make in (AffectClient, AsyncAffectClient):  # nor through a copy that shares the connection
        client = make("10.1.2.3:50051")
        with pytest.raises(AffectClientError, match="clear text"):
            client.with_options(token="s3cret")
        for change in ({"target": "localhost:1"}, {"tls": True}, {"root_certificates": b"PEM"}):
            with pytest.raises(ValueError, match=f"cannot change {next(iter(change))}"):  # the connection's own
                client.with_options(**change)
        assert client.with_options(timeout=3).options.timeout == 3
        if make is AffectClient:  # the async twin makes its channel on first use: none here
            client.close()


def test_a_result_naming_a_modality_this_client_does_not_know_is_still_read():
    from affect_client import TurnResult

    message = pb.TurnResult(turn_index=3, present=[pb.TEXT, 9])
    message.absent.add(modality=9, reason="a newer server's modality")
    result = TurnResult.from_pb(message)
    assert result.present == ("text", "modality_9") and result.absent == {"modality_9": "a newer server's modality"}


def test_a_conversation_dropped_without_close_frees_its_server_slot(server):
    """Nothing of the client keeps a conversation alive but the caller: one dropped without
    close() is collected and its stream ended, so it does not hold a server slot until the
    client closes (or the server's idle timeout, 15 minutes)."""
    import gc

    def wait_until_none_open() -> int:
        deadline = time.monotonic() + 10
        while server.open_conversations() and time.monotonic() < deadline:
            time.sleep(0.05)
        return server.open_conversations()

    with AffectClient(server.target) as client:
        client.conversation().send("Hello, is anyone there?")  # never closed, never kept
        gc.collect()
        assert wait_until_none_open() == 0

        async def async_side() -> int:
            async with AsyncAffectClient(server.target) as aclient:  # still open while we look
                conversation = await aclient.conversation().open()
                await conversation.send("Hello again.")
                del conversation
                gc.collect()
                for _ in range(200):
                    if not server.open_conversations():
                        break
                    await asyncio.sleep(0.05)
                return server.open_conversations()

        assert asyncio.run(async_side()) == 0


@pytest.mark.parametrize("resuming", [False, True])
def test_unavailable_is_retried_for_the_whole_window_whatever_the_jitter(resuming):
    """The README promised retries "up to about 12 s, as long as a server takes to restart", but
    full jitter made them give up after 4.4-9.2 s (median 5.4 s) while a restart takes 8-10 s: the
    last attempt is now made at the window's end or after, whatever the waits drew (here with the
    policy's clock advanced by each wait, as if each attempt took no time), and no wait is longer
    than the backoff's cap. A resume's reopening has its own, longer window; 0 retries: none."""
    import random

    from affect_client import ClientOptions, _constants as C, _core

    window = max(_core.retry_window_s(C.DEFAULT_MAX_RETRIES), C.RESUME_REOPEN_S if resuming else 0.0)
    assert _core.retry_window_s(C.DEFAULT_MAX_RETRIES) >= 15  # a restart here: 8-10 s, and the channel's reconnection
    refused = UnavailableError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
    for seed in range(300):
        random.seed(seed)
        now = [0.0]
        retries = _core.Retries(ClientOptions(), resuming=resuming, clock=lambda: now[0])
        attempts = [0.0]
        while (delay := retries.delay(refused)) is not None:
            assert 0 <= delay <= C.MAX_BACKOFF_S
            now[0] += delay
            attempts.append(now[0])
        assert attempts[-1] == pytest.approx(window) and len(attempts) > C.DEFAULT_MAX_RETRIES
    assert _core.Retries(ClientOptions(max_retries=0), clock=lambda: 0.0).delay(refused) is None
    assert ("grpc.max_reconnect_backoff_ms", C.MAX_BACKOFF_S * 1000) in _core.channel_arguments(_core.ClientOptions("127.0.0.1:1"))


def test_calls_made_while_the_server_restarts_reach_it_with_the_default_retries(analyzer):
    """A call, and a conversation's opening in the asyncio twin, made before the server listens and
    8 s before it does (a restart's time here): with the default settings both are answered (they
    gave up after about 5 s, and gRPC's own reconnection backoff, 1 s growing 1.6-fold, kept a
    channel from reaching a server listening again at 9 s until 14 s)."""
    port = _free_port()
    started: list[ServerThread] = []
    timer = threading.Timer(8.0, lambda: started.append(ServerThread(analyzer, port=port).__enter__()))
    target = f"127.0.0.1:{port}"

    async def opened_async() -> int:
        async with AsyncAffectClient(target) as client, client.conversation() as conversation:
            return (await conversation.send("Are you back?")).turn_index

    timer.start()
    try:
        with AffectClient(target) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
            analyzed = pool.submit(client.analyze, "Is anyone there?")
            assert asyncio.run(opened_async()) == 0
            assert analyzed.result(timeout=60).present == ("text",)
    finally:
        timer.join()
        for server in started:
            server.__exit__(None, None, None)


def test_a_client_waits_out_a_server_that_is_still_starting():
    """UNAVAILABLE is retried with growing waits until the server listens: a conversation opened
    before the server has started opens once it does. The default window (about 20 s) covers a
    restart on an idle machine; this test gives more, for a loaded one."""
    from affect_server.launch import ServeProcess

    port = _free_port()
    started: list[ServeProcess] = []
    timer = threading.Timer(1.0, lambda: started.append(ServeProcess("--port", str(port), "--speech-model", "none",
                                                                     "--face-model", "none", stdout=subprocess.DEVNULL,
                                                                     stderr=subprocess.DEVNULL)))
    timer.start()
    try:
        with AffectClient(f"127.0.0.1:{port}", max_retries=12) as client, client.conversation() as conversation:
            assert conversation.send("Are you there now?").present == ("text",)
    finally:
        timer.join()
        for server in started:
            server.stop()


def test_a_closed_client_says_so_in_its_own_error(server):
    """Not gRPC's ValueError (sync) or UsageError (asyncio): one error of the client's tree, the same
    for both twins, for the client and the copies ``with_options`` made of it."""
    from affect_client import AffectClientError, ClientClosedError

    client = AffectClient(server.target)
    copy = client.with_options(timeout=5)
    client.close()
    for call in (lambda: client.analyze("hi"), client.list_models, client.conversation, lambda: copy.analyze("hi")):
        with pytest.raises(ClientClosedError, match="closed"):
            call()
    assert issubclass(ClientClosedError, AffectClientError) and not issubclass(ClientClosedError, ValueError)

    async def async_side() -> list[str]:
        aclient = AsyncAffectClient(server.target)
        await aclient.close()
        names = []
        for call in (lambda: aclient.analyze("hi"), aclient.list_models, lambda: aclient.conversation().open()):
            try:
                await call()
            except ClientClosedError as exc:
                names.append(type(exc).__name__)
        return names

    assert asyncio.run(async_side()) == ["ClientClosedError"] * 3


def test_an_adapting_server_reads_a_heavy_clip_against_the_same_running_statistics(data_root):
    """With ``--speech-adapt``, a clip over ``heavy_audio_seconds`` goes to the heavy lane's own
    speech model, which must read it through the loaded encoder's channel reader: the clip
    counts in the deployment's running statistics as a short one would (it did not before:
    the heavy model adapted to nothing)."""
    import numpy as np
    import soundfile as sf

    from affect import Analyzer
    from affect_client import Audio

    analyzer = Analyzer(text=None, face=None, forecast=None, encoder_options={"speech": {"adapt": True}})
    reader = analyzer.speech.reader
    clip = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[0]
    samples = sf.read(str(clip), dtype="float32")[0]
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    with ServerThread(analyzer, heavy_audio_seconds=1.0, metrics_port=_free_port()) as server, \
            AffectClient(server.target) as client, client.conversation() as conversation:
        assert reader.frames_heard == 0
        result = conversation.send(audio=Audio(pcm, pb.PCM_S16LE, sample_rate_hz=16_000))
        assert [str(m) for m in result.present] == ["speech"], result.absent
        assert _metric(server, 'affect_batch_size_count{encoder="speech-heavy"}') == 1  # the heavy lane read it
        assert reader.frames_heard > 0


def test_a_turn_that_breaks_an_encoder_fails_alone_and_the_stream_goes_on(text_encoder, caplog):
    """Fault injection (no real input is known to break an encoder, which is the point of the
    rule): the text model raises on one turn. That turn gets INTERNAL with an error id, its
    conversation goes on, a turn of another conversation batched with it is answered, and the
    log names the error's type and id but never the turn's text (the error's message quotes it)."""
    import copy
    import logging

    from affect import Analyzer

    secret = "POISON my card number is 4111 1111 1111 1111"
    faulty = copy.copy(text_encoder)  # the same loaded model; only its batch call is wrapped

    def analyze_prepared(requests):
        if any(str(r.text).startswith("POISON") for r in requests):
            raise RuntimeError(f"cannot read {requests[0].text!r}")
        return text_encoder.analyze_prepared(requests)

    faulty.analyze_prepared = analyze_prepared
    analyzer = Analyzer(text=faulty, speech=None, face=None)

    async def both(target: str):
        async with AsyncAffectClient(target, max_retries=0) as client, client.conversation() as poisoned, \
                client.conversation() as other:
            answers = await asyncio.gather(poisoned.send(secret), other.send("Thank you, that helps a lot."),
                                           return_exceptions=True)
            after = await poisoned.send("Hello again.")
            return answers, after

    with caplog.at_level(logging.ERROR, logger="affect.server"), \
            ServerThread(analyzer, batch_max_wait_ms=300, adaptive_batch_wait=False, metrics_port=_free_port()) as server:
        (refused, answered), after = asyncio.run(both(server.target))
        with AffectClient(server.target, max_retries=0) as client, pytest.raises(TurnRefusedError) as unary:
            client.analyze(secret)  # as in a conversation
        assert _metric(server, 'affect_batch_size_sum{encoder="text"}') == 4  # the first two turns shared a batch
        assert _metric(server, 'affect_batch_size_count{encoder="text"}') == 3
    assert isinstance(refused, TurnRefusedError) and refused.code == grpc.StatusCode.INTERNAL, refused
    assert refused.field == "turn" and "error " in str(refused)
    assert answered.emotion is not None and after.emotion is not None  # the batch-mate and the next turn
    assert unary.value.code == grpc.StatusCode.INTERNAL and unary.value.field == "turn" and "POISON" not in str(unary.value)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    error_id = str(refused).split("error ")[1].split(")")[0]
    assert f"RuntimeError (error {error_id})" in logged and "4111" not in logged and "POISON" not in logged


def test_an_analyze_call_whose_request_never_arrives_gives_its_slot_back(analyzer):
    """A client that opens Analyze and sends nothing (or too slowly) is ended with
    DEADLINE_EXCEEDED after analyze_body_timeout_s, and its per-client slot is free again (it
    was held for as long as the call stayed open)."""
    async def stalled_then_normal(target: str):
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.stream_unary("/affect.v1.AffectService/Analyze",
                                        request_serializer=pb.AnalyzeRequest.SerializeToString,
                                        response_deserializer=pb.AnalyzeResponse.FromString)

            async def nothing():
                await asyncio.sleep(3600)
                yield pb.AnalyzeRequest()

            with pytest.raises(grpc.aio.AioRpcError) as stalled:
                await call(nothing(), timeout=60)
            answer = await call(iter([pb.AnalyzeRequest(turn=pb.Turn(text=b"Is it fixed now?"))]), timeout=60)
            return stalled.value, answer

    with ServerThread(analyzer, analyze_body_timeout_s=1.0, max_analyze_per_peer=1) as server:
        stalled, answer = asyncio.run(stalled_then_normal(server.target))
    # ended by the server (its message), not by the client's own 60 s deadline
    assert stalled.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "did not arrive whole within 1 s" in stalled.details()
    assert answer.result.HasField("fused")  # the one slot this client has was given back


def test_a_turn_whose_caller_left_keeps_its_budget_until_its_work_is_over(analyzer, caplog):
    """A turn cancelled by its caller (a deadline, a disconnect) still has its decoded data in a
    worker's queue or a batch: its share of the in-flight budget is given back when that work
    ends, not when the caller leaves (before, a client that sent and cancelled at once could
    fill memory past max_in_flight_mb while every ticket was already free)."""
    def in_flight_turns(server) -> int:
        async def read():
            return server.running.servicer.budget.turns

        return server.call(read())

    with ServerThread(analyzer, batch_max_wait_ms=3000, adaptive_batch_wait=False) as server, \
            AffectClient(server.target, max_retries=0, timeout=0.5) as client:
        with pytest.raises(APIStatusError) as gone:  # the batch waits 3 s for company: the caller gives up first
            client.analyze("Where is my parcel?")
        assert gone.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        held_after_the_caller_left = in_flight_turns(server)
        deadline = time.monotonic() + 60
        while in_flight_turns(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert held_after_the_caller_left == 1 and in_flight_turns(server) == 0  # held, then given back
        assert client.with_options(timeout=30).analyze("Is it there yet?").emotion is not None
        # a conversation whose turn timed out goes on; its turn's late answer (dropped) changes nothing
        with caplog.at_level(logging.ERROR, logger="affect.server"), \
                AffectClient(server.target, max_retries=0, turn_timeout=0.5) as impatient:
            conversation = impatient.conversation().__enter__()
            with pytest.raises(APIStatusError):
                conversation.send("Hello?")
            deadline = time.monotonic() + 60
            while in_flight_turns(server) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert in_flight_turns(server) == 0 and server.open_conversations() == 0
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


class _Peer:
    """What a gRPC context tells of its caller (``context.peer()``), for addresses this loopback
    test cannot connect from."""

    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer


@pytest.mark.parametrize("peers, same", [
    (["ipv4:10.0.0.7:5555", "ipv4:10.0.0.7:6000"], True),  # new connections of one client
    (["ipv4:10.0.0.7:5555", "ipv4:10.0.0.8:5555"], False),
    (["ipv6:[2001:db8:1:2:aaaa::1]:443", "ipv6:%5B2001:db8:1:2:bbbb::9%5D:80"], True),  # one /64, as gRPC may quote it
    (["ipv6:[2001:db8:1:2::1]:443", "ipv6:[2001:db8:1:3::1]:443"], False),
    (["ipv6:[::ffff:10.0.0.7]:1", "ipv4:10.0.0.7:2"], True),  # an IPv4-mapped address is its IPv4 client
])
def test_per_client_limits_count_an_ipv6_client_by_its_64_block(peers, same):
    from affect_server.servicer import _peer_host

    first, second = (_peer_host(_Peer(p)) for p in peers)
    assert (first == second) is same, (first, second)


def test_a_thread_waiting_behind_a_timed_out_turn_gets_its_own_answer(analyzer):
    """Thread A's turn times out while the server's loop is held up; thread B, waiting for its
    turn on the same conversation, gets its own answer on the same stream once the server is back,
    never A's late answer (which comes first, and is dropped). B was told the conversation closed."""
    from affect_client import TurnTimeoutError

    outcomes: dict[str, BaseException | str] = {}
    with ServerThread(analyzer) as server, \
            AffectClient(server.target, max_retries=0, turn_timeout=2.0) as client, \
            client.conversation() as conversation:
        def send(name: str) -> None:
            try:
                outcomes[name] = conversation.send(f"Turn from {name}.", turn_id=name).turn_id
            except Exception as exc:  # noqa: BLE001 - the outcome is the point
                outcomes[name] = exc

        server.loop.call_soon_threadsafe(time.sleep, 2.4)  # A gets no answer within its 2 s; B, asking from 2 s, has until 4 s
        first = threading.Thread(target=send, args=("A",))
        first.start()
        time.sleep(0.1)  # A holds the conversation; B queues behind it
        second = threading.Thread(target=send, args=("B",))
        second.start()
        first.join(30)
        second.join(30)
    assert isinstance(outcomes["A"], TurnTimeoutError), outcomes
    assert outcomes["B"] == "B", outcomes


def test_a_task_waiting_behind_a_timed_out_turn_gets_its_own_answer(analyzer):
    """The async twin of the test above: task B, queued behind A's timed-out turn, gets its own
    answer (it was told the conversation closed)."""
    from affect_client import TurnResult, TurnTimeoutError

    async def two_tasks(server: ServerThread) -> list:
        async with AsyncAffectClient(server.target, max_retries=0, turn_timeout=2.0) as client, \
                client.conversation() as conversation:
            server.loop.call_soon_threadsafe(time.sleep, 2.4)
            first = asyncio.create_task(conversation.send("Turn from A.", turn_id="A"))
            await asyncio.sleep(0.1)  # A holds the conversation; B queues behind it
            second = asyncio.create_task(conversation.send("Turn from B.", turn_id="B"))
            return await asyncio.gather(first, second, return_exceptions=True)

    with ServerThread(analyzer) as server:
        a, b = asyncio.run(two_tasks(server))
    assert isinstance(a, TurnTimeoutError), a
    assert isinstance(b, TurnResult) and b.turn_id == "B" and b.turn_index == 1, b


def test_closing_a_client_ends_its_conversations_with_client_closed_error(analyzer):
    """A turn waiting when its client is closed, and a turn sent after, raise ClientClosedError
    in both twins (the sync one raised CANCELLED, the async one a CancelledError of a task that
    nobody cancelled); closing the conversation then is quiet."""
    from affect_client import ClientClosedError

    def sync_side(target: str) -> list:
        client = AffectClient(target, max_retries=0)
        conversation = client.conversation()
        outcome: list = []

        def send() -> None:
            try:
                outcome.append(conversation.send("pending"))
            except Exception as exc:  # noqa: BLE001 - the outcome is the point
                outcome.append(exc)

        waiting = threading.Thread(target=send)
        waiting.start()
        time.sleep(0.3)  # the turn waits in a 2 s batch
        client.close()
        waiting.join(10)
        with pytest.raises(ClientClosedError):
            conversation.send("after")
        conversation.close()
        return outcome

    async def async_side(target: str) -> list:
        client = AsyncAffectClient(target, max_retries=0)
        conversation = await client.conversation().open()
        waiting = asyncio.create_task(conversation.send("pending"))
        await asyncio.sleep(0.3)
        await client.close()
        outcome = await asyncio.gather(waiting, return_exceptions=True)
        with pytest.raises(ClientClosedError):
            await conversation.send("after")
        await conversation.close()
        return outcome

    with ServerThread(analyzer, batch_max_wait_ms=2000, adaptive_batch_wait=False) as server:
        for outcome in (sync_side(server.target), asyncio.run(async_side(server.target))):
            assert isinstance(outcome[0], ClientClosedError), outcome


def test_an_async_open_cancelled_midway_leaves_the_conversation_to_open_again(server):
    """An open() cancelled before the server's answer (``asyncio.wait_for``) left the stream set
    and marked open: the next open() returned it as it was, and every answer came one turn late."""
    async def cancel_then_open() -> tuple[str, list[int]]:
        async with AsyncAffectClient(server.target, max_retries=0) as client:
            conversation = client.conversation()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conversation.open(), 0.001)
            await conversation.open()
            indexes = [(await conversation.send(f"turn {i}", turn_id=f"t{i}")).turn_index for i in range(2)]
            await conversation.close()
            return conversation.id, indexes

    conversation_id, indexes = asyncio.run(cancel_then_open())
    assert conversation_id and indexes == [0, 1]


def test_a_turn_too_big_to_send_is_refused_before_sending_and_the_conversation_goes_on(server):
    """Over the channel's 16 MiB a message, gRPC refused the turn only once on its way, which
    ended the conversation (and read as INTERNAL in the async client)."""
    from affect_client import InvalidInputError

    big = b"RIFF" + bytes(17 * 2**20)
    with AffectClient(server.target, max_retries=0) as client, client.conversation() as conversation:
        with pytest.raises(InvalidInputError, match="17.00 MiB") as refused:
            conversation.send(audio=big)
        assert refused.value.field == "turn"
        assert conversation.send("next").turn_index == 0
        with pytest.raises(InvalidInputError, match="17.00 MiB"):
            client.analyze(audio=big)

    async def async_twin() -> int:
        async with AsyncAffectClient(server.target, max_retries=0) as client, client.conversation() as conversation:
            with pytest.raises(InvalidInputError, match="17.00 MiB") as refused:
                await conversation.send(audio=big)
            assert refused.value.field == "turn"
            with pytest.raises(InvalidInputError, match="17.00 MiB"):
                await client.analyze(audio=big)
            return (await conversation.send("next")).turn_index

    assert asyncio.run(async_twin()) == 0


def test_a_drain_waits_for_the_service_not_for_idle_streams_of_others(analyzer):
    """An idle Health.Watch stream (gRPC's client-side health checking keeps one open) and an
    Analyze call whose body never comes each held the stop for the whole grace period: longer
    than an orchestrator's 30 s before it kills the process. The service's own calls end, the
    Watch sees NOT_SERVING, and the stop follows."""
    server = ServerThread(analyzer).__enter__()
    seen: list[int] = []
    try:
        channel = grpc.insecure_channel(server.target)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        reader = threading.Thread(target=lambda: [seen.append(r.status) for r in _until_error(watch)], daemon=True)
        reader.start()
        never = threading.Event()

        def no_body():
            never.wait(60)
            yield pb.AnalyzeRequest()

        slow = channel.stream_unary("/affect.v1.AffectService/Analyze", request_serializer=pb.AnalyzeRequest.SerializeToString,
                                    response_deserializer=pb.AnalyzeResponse.FromString).future(no_body())
        time.sleep(0.5)
        started = time.monotonic()
        server.call(server.running.drain_and_stop(30.0), timeout=60)
        took = time.monotonic() - started
        assert took < 10, took  # it took the 30 s grace
        assert slow.exception(timeout=10).code() == grpc.StatusCode.UNAVAILABLE
        reader.join(10)
        assert health_pb2.HealthCheckResponse.NOT_SERVING in seen
        never.set()
        channel.close()
    finally:
        server.loop.call_soon_threadsafe(server.loop.stop)
        server._thread.join(10)


def _until_error(stream):
    try:
        yield from stream
    except grpc.RpcError:
        return


def test_serve_logs_the_licences_of_the_models_it_loaded_once():
    """Every shipped model is for non-commercial research use only; an operator starting the
    server was told so nowhere. The log names each loaded model's licence, as its weights entry
    holds it, in one line."""
    from affect._weights import licence_parts
    from affect.forecast import ForecastWeights
    from tests._serving import ServerProcess

    server = ServerProcess("--speech-model", "none", "--face-model", "none")
    assert server.stop() == 0
    (line,) = [line for line in server.log().splitlines() if "licences:" in line]
    text, forecast = TextWeights.DEFAULT.value, ForecastWeights.DEFAULT.value
    assert f"models loaded: {text.id}, {forecast.id}; licences: " in line, line  # no fusion: one encoder
    for weights in (text, forecast):
        terms, data = licence_parts(weights.meta["licence"])
        assert f"{terms}: " in line and f"{weights.id} ({data})" in line, line
    assert line.endswith("see `affect models`")


def test_the_licence_line_of_configured_models_is_the_loaded_models_one(analyzer, full_analyzer):
    """``affect serve --ray`` loads its models in Ray's workers, and logged no licence line: it
    logs the one plain ``affect serve`` logs, read from the settings (the weights each encoder
    resolves to, the fusion head, the forecaster) without loading a model."""
    from affect.forecast import ForecastWeights
    from affect_server.app import configured_models_and_licences, models_and_licences
    from affect_server.config import ServerConfig

    assert configured_models_and_licences(ServerConfig(speech_model="none", face_model="none")) == \
        models_and_licences(analyzer)
    assert configured_models_and_licences(ServerConfig()) == models_and_licences(full_analyzer)
    named = configured_models_and_licences(ServerConfig(text_model="MINILM_MELD_V1", speech_model="none", face_model="none"))
    assert named.startswith(f"models loaded: text-minilm-meld@1, {ForecastWeights.DEFAULT.value.id}; licences: ")
    with pytest.raises(SystemExit, match=r"^affect serve: text_model: unknown TextWeights 'bogus'; known \(name / id\): "):
        configured_models_and_licences(ServerConfig(text_model="bogus"))  # refused as the other settings are


def test_json_logs_are_one_object_a_line_and_hold_no_content():
    """``--log-format json`` for a log pipeline: every line the server logs is one JSON object
    (time, level, logger, message), a turn's text is never among them, and a failure's stack comes
    without its message (``affect_server.logs``)."""
    import json

    from affect_server.logs import TEXT_FORMAT, JsonLineFormatter, TextFormatter
    from tests._serving import ServerProcess

    secret = "my card number is 4929 1234 5678 9012"
    server = ServerProcess("--log-format", "json", "--speech-model", "none", "--face-model", "none")
    try:
        with AffectClient(server.target) as client, client.conversation(conversation_id="call-7") as conversation:
            assert conversation.send(secret, speaker="caller").emotion is not None
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in server.log().splitlines()]  # standard output's line too (it was plain text)
    assert records and all(set(r) == {"time", "level", "logger", "message"} for r in records)
    assert any(r["message"].startswith("affect serving on") for r in records)
    assert any(r["message"].startswith("affect: serving on 127.0.0.1:") for r in records)
    assert any("closed" in r["message"] for r in records) and "call-7" not in server.log()  # ids as digests
    assert "4929" not in server.log() and "card" not in server.log()

    try:
        raise ValueError(secret)
    except ValueError:
        record = logging.LogRecord("affect.server", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    shown = json.loads(JsonLineFormatter().format(record))
    assert shown["exception"].startswith("ValueError; stack:") and "4929" not in shown["exception"]
    plain = TextFormatter(TEXT_FORMAT).format(record)  # the text format too (the stock one printed it)
    assert "ValueError; stack:" in plain and "4929" not in plain

"""Conversation state: smoothing, trend, events with hysteresis, bounded memory."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from affect.results import AffectEstimate
from affect.state import ConversationState, StateThresholds
from tests._handover import AFTER_HANDOVER as _AFTER, BEFORE_HANDOVER as _BEFORE

ORDER = ["neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise"]


def reading(emotion: str, p: float = 0.8) -> AffectEstimate:
    probs = [(1 - p) / 6] * 7
    probs[ORDER.index(emotion)] = p
    return AffectEstimate(**AffectEstimate.fields_from_probs(probs, [0.3, 0.4, 0.3]))


def run(state: ConversationState, script: list[tuple[str, str]]):
    out = []
    for i, (speaker, emotion) in enumerate(script):
        out.append(state.update(reading(emotion), speaker, i))
    return out


def test_sustained_negative_shift_fires_once_then_recovers():
    state = ConversationState()
    script = [("caller", "happiness"), ("agent", "neutral"), ("caller", "neutral"), ("caller", "sadness"),
              ("caller", "anger"), ("caller", "anger"), ("caller", "sadness"), ("caller", "happiness"), ("caller", "happiness")]
    kinds = [[e.kind for e in events] for _, events in run(state, script)]
    flat = [k for ks in kinds for k in ks]
    assert flat.count("sustained_negative_shift") == 1
    first = next(i for i, ks in enumerate(kinds) if "sustained_negative_shift" in ks)
    assert first >= 4  # needs the drop to persist, not one bad turn
    assert "negative_recovered" in flat and flat.index("negative_recovered") > flat.index("sustained_negative_shift")


def test_one_bad_turn_is_not_an_event():
    state = ConversationState()
    events = [e for _, es in run(state, [("a", "happiness"), ("a", "anger"), ("a", "happiness"), ("a", "neutral")]) for e in es]
    assert not [e for e in events if e.kind == "sustained_negative_shift"]


def test_rising_anger_is_per_speaker():
    state = ConversationState()
    script = [("caller", "neutral"), ("agent", "happiness"), ("caller", "anger"), ("agent", "happiness"),
              ("caller", "anger"), ("agent", "happiness"), ("caller", "anger")]
    events = [e for _, es in run(state, script) for e in es]
    anger = [e for e in events if e.kind == "rising_anger"]
    assert len(anger) == 1 and anger[0].speaker == "caller"


def test_smoothing_and_trend():
    state = ConversationState(StateThresholds(smoothing=0.5))
    snapshots = [s for s, _ in run(state, [("a", "happiness")] * 3 + [("a", "sadness")] * 3)]
    valences = [s.valence for s in snapshots]
    assert valences[2] > 0.5 and valences[-1] < 0
    assert all(b < a for a, b in zip(valences[3:], valences[4:]))  # smoothed: falls step by step
    assert snapshots[-1].valence_trend < 0 < snapshots[2].valence_trend + 1e-9
    assert snapshots[-1].turns == 6 and snapshots[-1].speakers[0].dominant_emotion == "sadness"


def test_memory_is_bounded():
    state = ConversationState(StateThresholds(max_speakers=4, history=5))
    for i in range(1000):
        state.update(reading("neutral"), f"speaker-{i % 50}", i)
    snapshot = state.snapshot()
    assert len(snapshot.speakers) == 4 and snapshot.turns == 1000
    assert len(state._all.valence_history) == 5


@pytest.mark.parametrize("alpha", [0.2, 0.9])
def test_first_turn_is_taken_as_is(alpha):
    state = ConversationState(StateThresholds(smoothing=alpha))
    snapshot, _ = state.update(reading("anger"), None, 0)
    assert snapshot.valence == pytest.approx(reading("anger").valence)


def _valence(v: float) -> AffectEstimate:
    return AffectEstimate(**AffectEstimate.fields_from_probs([1, 0, 0, 0, 0, 0, 0], [0.3, 0.4, 0.3], valence=v, arousal=0.0))


def test_a_negative_shift_needs_its_turns_in_a_row():
    """A turn that fails the drop rule (below -0.25 but within 0.3 of the peak) ends the run: it
    left the count as it was, and the next qualifying turn fired the event on turns not in a row."""
    state = ConversationState(StateThresholds(smoothing=1.0))  # each turn's valence as it is
    kinds = [[e.kind for e in state.update(_valence(v), "a", i)[1]] for i, v in enumerate([0.0, -0.5, -0.28, -0.31])]
    assert "sustained_negative_shift" not in sum(kinds, [])
    assert "sustained_negative_shift" in [e.kind for e in state.update(_valence(-0.4), "a", 4)[1]]  # -0.31, -0.4: two


def test_no_state_is_reported_before_the_first_reading_and_a_dict_is_a_copy():
    """Before any reading the state's numbers read as neutral: there is none (``None``) until the
    first reading; and editing ``to_dict()`` left the result changed."""
    state = ConversationState()
    assert state.update(None, "a", 0) == (None, ())
    snapshot, _ = state.update(_valence(-0.5), "a", 1)
    assert state.update(None, "a", 2)[0] == snapshot  # a turn without a reading changes nothing
    as_dict = snapshot.to_dict()
    as_dict["speakers"][0]["valence"] = 99.0
    assert snapshot.speakers[0].valence == -0.5


def test_an_event_about_another_speaker_says_whom_it_is_about_in_rows():
    """A customer's turn can raise the agent's escalation_risk: the table, CSV and plot showed it
    as the customer's own."""
    from affect._format import event_label
    from affect.export import turn_row

    turn = {"turn_index": 5, "speaker": "customer", "events": [
        {"kind": "rising_anger", "speaker": "customer"}, {"kind": "escalation_risk", "speaker": "agent"},
        {"kind": "escalation_risk", "speaker": None}]}
    assert turn_row(turn)["events"] == "rising_anger,escalation_risk(agent),escalation_risk(unnamed)"
    assert event_label("escalation_risk", None, None) == "escalation_risk"


@pytest.mark.parametrize("setting, named", [({"history": 0}, "history"), ({"max_speakers": 0}, "max_speakers"),
                                            ({"escalation_rearm": 0.3}, "escalation_rearm"),
                                            ({"trend_turns": 0}, "trend_turns"), ({"negative_turns": 0}, "negative_turns"),
                                            ({"smoothing": 0.0}, "smoothing"), ({"smoothing": 1.5}, "smoothing"),
                                            ({"anger_rearm": 0.5}, "anger_rearm")])
def test_thresholds_that_would_break_the_events_are_refused(setting, named):
    """history=0 failed on the first turn (max() of nothing), max_speakers=0 dropped every event,
    a re-arm level above its warning level warned on every turn: each is refused, naming it."""
    with pytest.raises(ValueError, match=f"StateThresholds.{named} must be"):
        StateThresholds(**setting)


def test_turns_out_of_order_are_refused_before_anything_changes():
    """A turn index lower than the last one failed deep in the forecaster with 'math domain error',
    after the turn count and speakers had changed."""
    state = ConversationState()
    state.update(reading("neutral"), "a", 5)
    before = state.snapshot()
    with pytest.raises(ValueError, match="turn_index 3 after turn 5"):
        state.update(reading("anger"), "b", 3)
    assert state.snapshot() == before


def test_an_empty_speaker_is_no_speaker_as_on_the_wire():
    """The server reads speaker "" as no speaker; the library kept "" and None as two speakers, so
    the same traffic gave other states and events in-process than over the wire."""
    state = ConversationState()
    state.update(reading("neutral"), None, 0)
    snapshot, _ = state.update(reading("anger"), "", 1)
    assert [s.speaker for s in snapshot.speakers] == [None] and snapshot.speakers[0].turns == 2


def test_an_analyzers_conversation_takes_its_own_thresholds(analyzer):
    """Thresholds could be set only through Conversation(analyzer, thresholds=...), not where a
    conversation is opened (analyzer.conversation()): a desk that wants fewer warnings had no way."""
    strict = StateThresholds(escalation_anger=0.9, escalation_rearm=0.5)
    conversation = analyzer.conversation(thresholds=strict)
    assert conversation.state.thresholds is strict
    lines = ["This is ridiculous, I'm paying for this!", "I'm furious. Cancel my account now!"]
    assert not [e for line in lines for e in conversation.analyze(line, speaker="customer").events
                if e.kind == "escalation_risk"]
    default = analyzer.conversation()
    assert [e for line in lines for e in default.analyze(line, speaker="customer").events if e.kind == "escalation_risk"]


def test_a_speaker_angry_from_the_first_turn_raises_rising_anger():
    """A caller who opens angry had no rise to show, so no rising_anger (nor a negative shift,
    which needs a drop): only a forecast's warning, if any. The first turn counts as the rise."""
    state = ConversationState()
    events = [e for _, es in run(state, [("agent", "happiness"), ("caller", "anger"), ("caller", "anger")]) for e in es]
    anger = [e for e in events if e.kind == "rising_anger"]
    assert len(anger) == 1 and anger[0].speaker == "caller" and anger[0].turn_index == 1
    assert "from the first turn" in anger[0].message
    calm = [e for _, es in run(ConversationState(), [("caller", "neutral"), ("caller", "neutral")]) for e in es]
    assert not calm


def _support_call() -> list[tuple[str, str]]:
    import json
    from pathlib import Path

    lines = (Path(__file__).parents[1] / "docs" / "examples" / "support-call.jsonl").read_text().splitlines()
    return [(turn["speaker"], turn["text"]) for turn in map(json.loads, lines)]


def test_events_are_raised_only_for_the_event_speakers(analyzer):
    """A console was warned about its own agents: on the support call docs/examples/support-call.jsonl
    the customer's outburst raises escalation_risk for the agent too. With
    ``event_speakers=["customer"]`` only the customer's events are raised, the same as before; every
    turn's reading, state and forecast, the agent's included, is as without the option."""
    with analyzer.conversation() as every, analyzer.conversation(event_speakers=["customer"]) as watched:
        pairs = [(every.analyze(text, speaker=speaker), watched.analyze(text, speaker=speaker))
                 for speaker, text in _support_call()]
    everyone = [e for a, _ in pairs for e in a.events]
    assert {e.speaker for e in everyone} == {"customer", "agent"}, everyone  # the agent is warned about too
    for a, w in pairs:
        assert w.events == tuple(e for e in a.events if e.speaker == "customer")
        assert w.fused == a.fused and w.state == a.state  # readings, per-speaker state and forecast kept for all
    agent_turns = [w for _, w in pairs if w.speaker == "agent"]
    assert agent_turns and all(w.has_reading for w in agent_turns)
    assert any(f.speaker == "agent" for f in pairs[-1][1].state.forecast)
    assert watched.state.event_speakers == ("customer",)


def test_a_whole_conversation_is_analysed_with_its_event_speakers(analyzer) -> None:
    """``Analyzer.analyze_conversation(turns, event_speakers=...)``, as a conversation opened with
    them reads it; names it cannot take are refused before any turn is read."""
    from affect import InvalidInputError, Turn

    turns = [Turn(text=text, speaker=speaker) for speaker, text in _support_call()]
    every = analyzer.analyze_conversation(turns)
    watched = analyzer.analyze_conversation(turns, event_speakers=["customer"])
    assert any(e.speaker == "agent" for r in every for e in r.events)
    assert [r.events for r in watched] == [tuple(e for e in r.events if e.speaker == "customer") for r in every]
    assert [r.fused for r in watched] == [r.fused for r in every]
    read: list[Turn] = []

    def reading() -> Iterator[Turn]:
        for turn in turns:
            read.append(turn)
            yield turn

    with pytest.raises(InvalidInputError, match="event_speakers must be a list"):
        analyzer.analyze_conversation(reading(), event_speakers="customer")
    assert read == []


@pytest.mark.parametrize("names, where", [
    ("customer", "must be a list"),  # one name alone would be read letter by letter
    ([f"agent {i}" for i in range(17)], "names 17 speakers; the limit is 16"),
    (["customer", ""], "event_speakers[1] is empty"),
    (["x" * 129], "event_speakers[0] is longer than 128 characters"),
    (["cust\nomer"], "event_speakers[0] has a control or format character"),
    ([None], "event_speakers[0] must be a string"),
])
def test_event_speakers_that_could_not_name_speakers_are_refused(analyzer, names, where):
    from affect import InvalidInputError

    with pytest.raises(InvalidInputError, match=re.escape(where)) as refused:
        analyzer.conversation(event_speakers=names)
    assert refused.value.field == "event_speakers"
    assert analyzer.conversation(event_speakers=iter(["customer", "x" * 128])).state.event_speakers == ("customer", "x" * 128)




def _without(state, name: str):
    """The snapshot without the speaker ``name`` (in its speakers and forecast)."""
    return (state.turns, state.valence, state.arousal, state.valence_trend, state.arousal_trend,
            tuple(s for s in state.speakers if s.speaker != name), tuple(f for f in state.forecast if f.speaker != name))


def test_a_reset_speaker_starts_anew_and_the_others_keep_their_state(analyzer):
    """A new caller put through under the same name (or a human agent taking over from a bot) had
    the earlier one's state: no rising_anger for an angry first turn (disarmed), their smoothed
    mood and forecast. After ``reset_speaker`` they are as a speaker not heard before: the
    conversation goes on exactly as if the earlier turns had been another speaker's (here "earlier
    caller"), with the agent's state, readings and forecast untouched by the reset."""
    from affect import ConversationClosedError, InvalidInputError

    with analyzer.conversation() as kept, analyzer.conversation() as reset, analyzer.conversation() as renamed:
        for speaker, text in _BEFORE:
            kept.analyze(text, speaker=speaker)
            reset.analyze(text, speaker=speaker)
            renamed.analyze(text, speaker="earlier caller" if speaker == "customer" else speaker)
        before = reset.state.snapshot()
        assert reset.reset_speaker("customer") == 2  # the turns the customer's state held
        after = reset.state.snapshot()
        assert [s.speaker for s in after.speakers] == ["agent"] and after.speakers[0] == before.speakers[-1]
        assert after.forecast == tuple(f for f in before.forecast if f.speaker == "agent")  # the agent's, as it was
        assert (after.turns, after.valence) == (before.turns, before.valence)  # the conversation's own goes on
        assert reset.reset_speaker("nobody by that name") == 0
        got = [(kept.analyze(text, speaker=speaker), reset.analyze(text, speaker=speaker),
                renamed.analyze(text, speaker=speaker)) for speaker, text in _AFTER]

    first_kept, first_reset, first_renamed = got[0]
    assert not [e for e in first_kept.events if e.kind == "rising_anger"]  # disarmed by the earlier caller
    anger = [e for e in first_reset.events if e.kind == "rising_anger"]
    assert len(anger) == 1 and "from the first turn" in anger[0].message
    assert [e.kind for e in first_reset.events] == ["rising_anger", "escalation_risk"]
    assert next(s for s in first_reset.state.speakers if s.speaker == "customer").turns == 1
    for k, r, n in got:
        assert r.fused == n.fused and r.events == n.events
        assert _without(r.state, "earlier caller") == _without(n.state, "earlier caller")
        agent = [s for s in r.state.speakers if s.speaker == "agent"]
        assert agent == [s for s in k.state.speakers if s.speaker == "agent"]  # the agent's own state untouched
        if r.speaker == "agent":
            assert r.fused == k.fused
    with pytest.raises(InvalidInputError, match="speaker is empty") as refused:
        analyzer.conversation().reset_speaker("")
    assert refused.value.field == "speaker"
    with pytest.raises(ConversationClosedError):
        reset.reset_speaker("customer")

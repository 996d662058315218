"""The next-turn forecast: the shipped weights load offline, beat persistence on real MELD test
dialogues, travel in every result and on the wire, and warn before a real outburst."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from affect.forecast import Forecaster, ForecastWeights
from affect.forecast_features import Reading
from affect.results import TurnResult
from affect.state import StateThresholds
from tests._offline import REFUSE_NETWORK

MELD_SUBSET = 60  # the first 60 MELD test dialogues in file order (about 550 turns)
FLOOR = 0.02  # the forecast's mean AUROC (negative, anger) must lead persistence's by at least this

OFFLINE_PROBE = REFUSE_NETWORK + textwrap.dedent(
    """
    from affect.forecast import Forecaster
    from affect.forecast_features import Reading
    f = Forecaster()
    out = f.forecast([Reading.of(0, "caller", [0, 0, 0, 1, 0, 0, 0], [1, 0, 0])])
    assert len(out) == 1 and 0 < out[0].anger < 1, out
    print("model", f.model_id, "window", f.window, "attempts:", len(attempts))
    sys.exit(1 if attempts else 0)
    """
)


@pytest.fixture(scope="module")
def forecaster() -> Forecaster:
    return Forecaster()


def test_shipped_forecaster_loads_offline_and_is_tiny():
    out = subprocess.run([sys.executable, "-c", OFFLINE_PROBE], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "attempts: 0" in out.stdout
    weights = ForecastWeights.DEFAULT.value
    assert weights.verified_path().stat().st_size < 100_000
    assert weights.meta["num_params"] == sum(p.numel() for p in Forecaster().net.parameters())


def test_the_numpy_run_time_path_gives_the_network_s_answers(forecaster):
    import torch

    from affect.forecast import batch_inputs
    from affect.forecast_features import targets

    rng = np.random.default_rng(3)
    readings = [Reading.of(i + (i > 5), ["caller", "agent", None][i % 3], rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(3)))
                for i in range(forecaster.window + 4)]
    for end in (1, 5, len(readings)):
        window = readings[:end][-forecaster.window:]
        with torch.inference_mode():
            expected = torch.sigmoid(forecaster.net(*batch_inputs([(window, w) for w in targets(window)]))).numpy()
        got = np.array([(f.negative, f.anger) for f in forecaster.forecast(readings[:end])])
        assert got == pytest.approx(expected, abs=1e-6)


def test_forecaster_beats_persistence_on_real_meld_test_dialogues(text_encoder, forecaster, data_root):
    from benchmarks.accuracy.forecast import auroc, meld_dialogues, read_all, score

    dialogues = meld_dialogues("test", data_root)[:MELD_SUBSET]
    scored = score(forecaster, dialogues, read_all(text_encoder, dialogues))
    assert len(scored.labels) > 500

    def mean_auroc(name: str) -> float:
        return float(np.mean([auroc(scored.labels[:, j], scored.scores[name][:, j]) for j in range(2)]))

    assert mean_auroc("forecast") >= mean_auroc("persistence") + FLOOR, (mean_auroc("forecast"), mean_auroc("persistence"))
    assert mean_auroc("forecast") > mean_auroc("trend"), (mean_auroc("forecast"), mean_auroc("trend"))


def test_every_result_and_the_proto_carry_the_forecast(analyzer):
    from affect_client._types import TurnResult as WireResult
    from server.affect_server.convert import turn_result_to_pb

    script = [("caller", "Hi, my parcel never arrived."), ("agent", "I'm sorry to hear that, let me check."),
              ("caller", "This is the third time! I want my money back now."), ("agent", "I understand.")]
    readings: list[Reading] = []
    with analyzer.conversation() as conversation:
        for i, (speaker, text) in enumerate(script):
            result = conversation.analyze(text=text, speaker=speaker)
            readings.append(Reading.of(i, speaker, result.fused.emotion_vector(), result.fused.sentiment_vector()))
            forecast = result.state.forecast
            # one forecast per speaker seen, the current speaker first, each the forecaster's own answer
            assert [f.speaker for f in forecast] == list(dict.fromkeys(s for s, _ in reversed(script[: i + 1])))
            assert forecast == analyzer.forecaster.forecast(readings)
            assert all(0 < f.negative < 1 and 0 < f.anger < 1 for f in forecast)
            # in the result's dict and back, and on the wire
            assert TurnResult.from_dict(result.to_dict()).state.forecast == forecast
            wire = WireResult.from_pb(turn_result_to_pb(result, "t"))
            assert [w.speaker for w in wire.state.forecast] == [f.speaker for f in forecast]
            for w, f in zip(wire.state.forecast, forecast):
                assert (w.negative, w.anger) == pytest.approx((f.negative, f.anger), abs=1e-6)  # float32 on the wire
    caller = next(f for f in forecast if f.speaker == "caller")
    assert caller.anger > next(f for f in forecast if f.speaker == "agent").anger  # the angry one is the caller


def test_no_forecaster_no_forecast(text_encoder):
    from affect import Analyzer

    plain = Analyzer(text=text_encoder, speech=None, face=None, forecast=None)
    result = plain.conversation().analyze(text="Where is my refund?", speaker="caller")
    assert result.state.forecast == () and result.to_dict()["state"]["forecast"] == []


def test_the_forecaster_reads_turns_as_under_the_prior_it_learnt_from(analyzer, data_root):
    """A deployment that sets a text prior (here a support desk's, mostly neutral) reads every turn
    differently, but its forecaster is handed the turns as under the prior its training readings
    were made under: the same forecasts as the default analyzer's, turn by turn; fed the plain
    reported readings it forecasts otherwise."""
    from affect import Analyzer, TextEncoder
    from affect.datasets import read_meld
    from affect.forecast_features import Reading

    desk = {"neutral": 0.85, "happiness": 0.04, "sadness": 0.03, "anger": 0.04, "fear": 0.01, "disgust": 0.01, "surprise": 0.02}
    at_desk = Analyzer(text=TextEncoder(prior=desk), speech=None, face=None)
    assert at_desk.forecaster.learnt_from_trained_readings
    dialogue = next(d for d in read_meld("test", data_root) if d[0].dialogue_id == "175")
    plain = at_desk.forecaster  # the same network fed the reported (desk) readings, for contrast
    reported: list[Reading] = []
    moved_answers = 0
    with analyzer.conversation() as default, at_desk.conversation() as shifted:
        for k, t in enumerate(dialogue):
            a = default.analyze(text=t.text, speaker=t.speaker)
            b = shifted.analyze(text=t.text, speaker=t.speaker)
            moved_answers += b.emotions["neutral"] > a.emotions["neutral"] + 0.05
            assert [f.speaker for f in b.state.forecast] == [f.speaker for f in a.state.forecast]
            for fa, fb in zip(a.state.forecast, b.state.forecast):
                assert (fb.negative, fb.anger) == pytest.approx((fa.negative, fa.anger), abs=1e-5), k
            reported.append(Reading.of(k, t.speaker, b.fused.emotion_vector(), b.fused.sentiment_vector()))
    assert moved_answers >= len(dialogue) // 2  # the desk prior does move the turns' readings
    naive = plain.forecast(reported)
    gap = max(max(abs(n.anger - f.anger), abs(n.negative - f.negative)) for n, f in zip(naive, b.state.forecast))
    assert gap > 0.02, gap


def test_escalation_risk_fires_on_a_real_escalating_conversation(analyzer, data_root):
    """MELD test dialogue 175: Rachel speaks calmly five times, then is angry in four turns in a
    row and three more later (gold labels). The warning must come for her while her anger is
    building, before her second angry turn: in time to hand over."""
    from affect.datasets import read_meld

    dialogue = next(d for d in read_meld("test", data_root) if d[0].dialogue_id == "175")
    angry = [k for k, t in enumerate(dialogue) if t.speaker == "Rachel" and t.emotion.value == "anger"]
    assert len(angry) == 7 and angry[0] == 9
    warned = []
    with analyzer.conversation() as conversation:
        for k, t in enumerate(dialogue):
            result = conversation.analyze(text=t.text, speaker=t.speaker)
            assert result.turn_index == k
            warned += [e for e in result.events if e.kind == "escalation_risk" and e.speaker == "Rachel"]
    assert warned, "no escalation_risk for Rachel"
    assert warned[0].turn_index < angry[1], warned
    assert warned[0].value >= StateThresholds().escalation_anger and "Rachel" in warned[0].message


def test_escalation_risk_warns_again_after_the_speaker_has_calmed_down():
    """The forecast remembers an angry spell for many turns after it (it stayed above the 0.13
    re-arm level through twelve calm turns), so a second spell raised no warning; the warning
    re-arms too once the speaker's own anger has stayed low for ``escalation_calm_turns`` turns."""
    from affect.forecast import Forecaster
    from affect.state import ConversationState
    from tests.test_state import reading

    state = ConversationState(forecaster=Forecaster())
    script = ["anger"] * 3 + ["neutral"] * 12 + ["anger"] * 4
    warned = [i for i, emotion in enumerate(script)
              for e in state.update(reading(emotion), "customer", i)[1] if e.kind == "escalation_risk"]
    assert len(warned) == 2 and warned[0] < 3 and warned[1] >= 15, warned  # one per angry spell, none while calm


def test_a_rows_next_turn_forecast_is_its_speakers(analyzer):
    """CSV and pandas rows carried the state but not the forecast: ``next_p_negative`` and
    ``next_p_anger`` are the forecast of the row's own speaker's next turn."""
    from affect.export import COLUMNS, turn_row

    with analyzer.conversation() as conversation:
        conversation.analyze("Where is my refund? I asked twice already.", speaker="customer")
        result = conversation.analyze("Let me check that for you right away.", speaker="agent")
    row = turn_row(result.to_dict())
    agent = next(f for f in result.state.forecast if f.speaker == "agent")
    assert (row["next_p_negative"], row["next_p_anger"]) == (agent.negative, agent.anger)
    assert {"next_p_negative", "next_p_anger"} <= set(COLUMNS)
    assert turn_row({"speaker": "x"})["next_p_anger"] is None  # no state yet: an empty cell

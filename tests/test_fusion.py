"""Late fusion and conversation events, with the shipped models on real test data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from affect import Analyzer
from affect.fusion import fuse
from affect.results import MODALITIES, AffectEstimate, Modality, ModalityResult
from benchmarks.accuracy.fusion import evaluate_subsets, draw_combinations
from recipes.fusion.predictions import face_predictions, speech_predictions, text_predictions


@pytest.fixture(scope="module")
def test_pools(data_root):
    """Encoder outputs on test data: 100 MELD test dialogues, the FER-2013 and RAVDESS test slices."""
    return {
        "text": text_predictions("test", data_root, limit=900),
        "face": face_predictions("test", data_root, None),
        "speech": speech_predictions("test", data_root, None),
    }


def test_fused_is_never_worse_than_best_single_or_average_on_fixed_combinations(test_pools):
    probs, labels = draw_combinations(test_pools, 2000, seed=11)
    for subset, r in evaluate_subsets(probs, labels).items():
        assert r["fusion"] >= r["best_single"], (subset, r)
        assert r["fusion"] >= r["average"], (subset, r)


def _result(modality: Modality, probs) -> ModalityResult:
    return ModalityResult(**AffectEstimate.fields_from_probs(list(probs), [0.2, 0.5, 0.3]), modality=modality, model="m@1")


def test_one_modality_is_passed_through_exactly(test_pools):
    for m in MODALITIES:
        p = test_pools[m.value].calibrated[3]
        fused = fuse({m: _result(m, p)})
        fields, shares = vars(fused.estimate), fused.shares
        assert np.allclose([fields["emotions"][e] for e in fields["emotions"]], p, atol=1e-6) and shares == {m: 1.0}


def test_shares_sum_to_one_and_follow_the_head(test_pools):
    for r in (2, 3):
        for subset in itertools.combinations(MODALITIES, r):
            results = {m: _result(m, test_pools[m.value].calibrated[0]) for m in subset}
            fused = fuse(results)
            fields, shares, name = vars(fused.estimate), fused.shares, fused.fusion
            assert set(shares) == set(subset) and sum(shares.values()) == pytest.approx(1.0)
            assert sum(fields["emotions"].values()) == pytest.approx(1.0, abs=1e-5) and name.startswith("late-fusion@")


def test_events_fire_on_a_conversation_that_turns_negative(analyzer: Analyzer):
    script = ["Hi! Thanks so much for your help last week, the new plan is great.",
              "But today the app crashes every time I open it.",
              "I've reinstalled it three times and it still doesn't work.",
              "This is ridiculous. I'm paying for this and nothing works!",
              "I'm furious. Cancel my account and give me a refund right now!",
              "Okay, thank you, that's perfect, I really appreciate it!",
              "Great, thanks a lot, have a nice day!"]
    with analyzer.conversation() as conversation:
        results = [conversation.analyze(text=t, speaker="customer") for t in script]
    kinds = [[e.kind for e in r.events] for r in results]
    fired = [k for ks in kinds for k in ks]
    assert "sustained_negative_shift" in fired and "rising_anger" in fired
    assert fired.index("sustained_negative_shift") < fired.index("negative_recovered")
    assert all(not ks for ks in kinds[:2])  # nothing before the mood turns
    assert results[4].state.valence < results[0].state.valence and results[4].state.valence_trend < 0

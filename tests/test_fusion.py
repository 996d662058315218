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


def test_each_part_of_a_validation_pool_is_halved_on_its_own():
    """RAVDESS's clips fall in the same half whether or not other corpora's validation speakers join
    the speech pool, so the two recipes compare on clips neither fitted; the halves split each pool."""
    from recipes.fusion.predictions import Predictions
    from recipes.fusion.train import halves_of

    rng = np.random.default_rng(0)

    def pool(n: int, offset: int) -> Predictions:
        labels = rng.integers(7, size=n)
        probs = np.full((n, 7), 1 / 7)
        probs[:, 0] = np.arange(offset, offset + n)  # each row told apart by its first column
        return Predictions(probs, probs, labels, "m")

    ravdess, others, faces = pool(120, 0), pool(250, 1000), pool(300, 5000)
    alone = halves_of({"speech": [ravdess], "face": [faces]}, rng)
    joined = halves_of({"speech": [ravdess, others], "face": [faces]}, rng)
    for half in (0, 1):
        ids = joined[half]["speech"].raw[:, 0]
        assert np.array_equal(ids[ids < 1000], alone[half]["speech"].raw[:, 0])
        assert np.array_equal(joined[half]["face"].raw, alone[half]["face"].raw)
    both = np.sort(np.concatenate([joined[0]["speech"].raw[:, 0], joined[1]["speech"].raw[:, 0]]))
    assert np.array_equal(both, np.sort(np.concatenate([ravdess.raw[:, 0], others.raw[:, 0]])))
    assert 0 < len(joined[0]["speech"].labels) < 370

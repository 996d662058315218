import json

import pytest

from affect.results import AffectEstimate, Modality, ModalityResult, TurnResult


def make_result(emotions, modality=Modality.TEXT):
    return ModalityResult(**AffectEstimate.fields_from_probs(emotions, [0.2, 0.3, 0.5]), modality=modality, model="m@1")


def test_fields_from_probs_derives_top_label_confidence_and_circumplex():
    r = make_result([0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert r.emotion.value == "happiness" and r.confidence == pytest.approx(0.6)
    assert r.sentiment_label.value == "positive"
    assert r.valence > 0 and -1 <= r.arousal <= 1


def test_wrong_vector_length_is_refused():
    with pytest.raises(ValueError):
        AffectEstimate.fields_from_probs([0.5, 0.5], [0.2, 0.3, 0.5])


def test_turn_result_round_trips_through_json():
    text = make_result([0.1, 0.1, 0.1, 0.5, 0.1, 0.05, 0.05])
    turn = TurnResult(
        **AffectEstimate.fields_from_probs(text.emotion_vector(), text.sentiment_vector()),
        turn_index=3, speaker="caller", present=(Modality.TEXT,), modalities={Modality.TEXT: text},
        absent={Modality.FACE: "no face detected"}, shares={Modality.TEXT: 1.0}, fusion="x@1",
    )
    data = json.loads(turn.to_json())
    assert data["emotion"] == "anger" and data["present"] == ["text"] and data["absent"] == {"face": "no face detected"}
    assert TurnResult.from_dict(data) == turn

import json

import pytest

from affect.results import AffectEstimate, Modality, ModalityResult, TurnResult, TurnResults
from affect.state import ConversationState


def make_result(emotions, modality=Modality.TEXT):
    return ModalityResult(**AffectEstimate.fields_from_probs(emotions, [0.2, 0.3, 0.5]), modality=modality, model="m@1")


def test_fields_from_probs_derives_top_label_confidence_and_circumplex():
    r = make_result([0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert r.emotion.value == "happiness" and r.confidence == pytest.approx(0.6)
    assert r.sentiment.value == "positive" and r.sentiment_label is r.sentiment
    assert r.sentiments == {"negative": 0.2, "neutral": 0.3, "positive": 0.5}
    assert r.valence > 0 and -1 <= r.arousal <= 1


def test_wrong_vector_length_is_refused():
    with pytest.raises(ValueError):
        AffectEstimate.fields_from_probs([0.5, 0.5], [0.2, 0.3, 0.5])


def test_turn_result_round_trips_through_json():
    text = make_result([0.1, 0.1, 0.1, 0.5, 0.1, 0.05, 0.05])
    turn = TurnResult(
        fused=AffectEstimate(**AffectEstimate.fields_from_probs(text.emotion_vector(), text.sentiment_vector())),
        turn_index=3, speaker="caller", present=(Modality.TEXT,), modalities={Modality.TEXT: text},
        absent={Modality.FACE: "no face detected"}, shares={Modality.TEXT: 1.0}, fusion="x@1",
    )
    data = json.loads(turn.to_json())
    assert data["emotion"] == "anger" and data["present"] == ["text"] and data["absent"] == {"face": "no face detected"}
    assert data["sentiment"] == "positive" and set(data["sentiments"]) == {"negative", "neutral", "positive"}
    assert TurnResult.from_dict(data) == turn


def test_a_turn_without_reading_says_so_in_every_form():
    turn = TurnResult(fused=None, turn_index=1, absent={Modality.SPEECH: "no speech detected", Modality.FACE: "no face detected"})
    assert not turn.has_reading and turn.emotion is None and turn.valence is None and turn.sentiment is None
    assert turn.no_reading_reason == "speech: no speech detected; face: no face detected"
    data = json.loads(turn.to_json())
    assert data["emotion"] is None and data["emotions"] is None and data["confidence"] is None and data["present"] == []
    assert TurnResult.from_dict(data) == turn
    row = turn.to_row()
    assert row["emotion"] is None and row["p_neutral"] is None and row["no_reading"] == turn.no_reading_reason


def test_files_written_before_the_names_were_unified_still_load():
    text = make_result([0.1, 0.1, 0.1, 0.5, 0.1, 0.05, 0.05])
    old = text.to_dict()
    old["sentiment_probs"] = old.pop("sentiments")
    assert ModalityResult.from_dict(old) == text


def test_modality_prints_as_its_value():
    assert str(Modality.FACE) == "face" and f"{Modality.SPEECH}" == "speech" and Modality.TEXT == "text"


def test_state_ignores_a_turn_without_reading():
    state = ConversationState()
    sad = AffectEstimate(**AffectEstimate.fields_from_probs([0.05, 0.05, 0.7, 0.05, 0.05, 0.05, 0.05], [0.8, 0.1, 0.1]))
    before, _ = state.update(sad, "caller", 0)
    after, events = state.update(None, "caller", 1)
    assert after == before and events == ()


def test_results_convert_to_a_dataframe():
    pd = pytest.importorskip("pandas")
    text = make_result([0.1, 0.1, 0.1, 0.5, 0.1, 0.05, 0.05])
    results = TurnResults([
        TurnResult(fused=AffectEstimate(**AffectEstimate.fields_from_probs(text.emotion_vector(), [0.6, 0.3, 0.1])),
                   turn_index=0, present=(Modality.TEXT,)),
        TurnResult(fused=None, turn_index=1, absent={Modality.FACE: "no face detected"}),
    ])
    frame = results.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame["turn_index"]) == [0, 1]
    assert frame.loc[0, "emotion"] == "anger" and frame.loc[0, "p_anger"] == pytest.approx(0.5)
    assert pd.isna(frame.loc[1, "valence"]) and frame.loc[1, "no_reading"] == "face: no face detected"

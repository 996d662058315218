import pytest

from affect.labels import (
    DATASET_LABELS,
    EMOTION_NAMES,
    EMOTION_VALENCE_AROUSAL,
    EMOTIONS,
    LOSSY_CHOICES,
    RAVDESS_EMOTION_CODES,
    Emotion,
    map_label,
    valence_arousal,
)


def test_one_label_set_of_seven_emotions_in_fixed_order():
    assert EMOTION_NAMES == ("neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise")


@pytest.mark.parametrize("dataset", ["meld", "goemotions-ekman", "dair-emotion", "fer2013", "ferplus", "ravdess"])
def test_every_dataset_has_one_table_into_the_label_set(dataset):
    table = DATASET_LABELS[dataset]
    assert all(v is None or isinstance(v, Emotion) for v in table.values())
    assert {v for v in table.values() if v is not None} <= set(EMOTIONS)


def test_lossy_choices_are_written_down():
    assert map_label("ravdess", "calm") is Emotion.NEUTRAL and "ravdess:calm" in LOSSY_CHOICES
    assert map_label("dair-emotion", "love") is Emotion.HAPPINESS and "dair-emotion:love" in LOSSY_CHOICES
    assert map_label("ferplus", "contempt") is None and "ferplus:contempt" in LOSSY_CHOICES


def _documented(dataset: str, label: str) -> bool:
    return any(key.split(":", 1)[0] == dataset and label in key.split(":", 1)[1].split("/") for key in LOSSY_CHOICES)


@pytest.mark.parametrize("dataset", sorted(DATASET_LABELS))
def test_every_dropped_or_merged_label_is_documented(dataset):
    table = DATASET_LABELS[dataset]
    for label, emotion in table.items():
        if emotion is None:
            assert _documented(dataset, label), f"{dataset}: dropping {label!r} is not written down"
    for emotion in set(table.values()) - {None}:
        merged = [label for label, e in table.items() if e is emotion]
        undocumented = [label for label in merged if not _documented(dataset, label)]
        assert len(undocumented) <= 1, f"{dataset}: merging {merged} into {emotion.value} is not written down"


def test_ravdess_codes_all_map():
    assert {map_label("ravdess", name) for name in RAVDESS_EMOTION_CODES.values()} == set(EMOTIONS)


def test_unknown_labels_fail_loudly():
    with pytest.raises(KeyError, match="unknown label"):
        map_label("meld", "contempt")
    with pytest.raises(KeyError, match="unknown data set"):
        map_label("iemocap", "happy")


def test_valence_arousal_mapping_is_in_range_and_ordered():
    for v, a in EMOTION_VALENCE_AROUSAL.values():
        assert -1 <= v <= 1 and -1 <= a <= 1
    happy = valence_arousal([0, 1, 0, 0, 0, 0, 0])
    sad = valence_arousal([0, 0, 1, 0, 0, 0, 0])
    angry = valence_arousal([0, 0, 0, 1, 0, 0, 0])
    assert happy[0] > 0 > sad[0] and angry[1] > sad[1]
    assert valence_arousal([1, 0, 0, 0, 0, 0, 0]) == (0.0, 0.0)

"""The corpus readers: every text and speech corpus maps into our labels, with the documented splits."""

from __future__ import annotations

from collections import Counter

import pytest

from affect.datasets.text_corpora import TEXT_CORPORA, hash_split, read_text_corpus
from affect.labels import PARTIAL_LABELS, Emotion, corpus_emotions
from tests._dailydialog import write_dailydialog


@pytest.mark.parametrize("corpus", TEXT_CORPORA)
def test_every_text_corpus_reads_into_labelled_turns(data_root, corpus):
    turns = read_text_corpus(corpus, data_root=data_root)
    splits = Counter(t.split for t in turns)
    assert set(splits) == {"train", "dev", "test"}, splits
    assert splits["train"] > splits["test"] > 100
    named = set(corpus_emotions(corpus))
    assert len(named) >= 3
    for t in turns[:2000]:
        assert t.text and t.allowed, t
        assert all(isinstance(e, Emotion) for e in t.allowed)


def test_emocontext_others_is_a_set_and_turns_carry_their_chat(data_root):
    turns = read_text_corpus("emocontext", "test", data_root)
    others = [t for t in turns if len(t.allowed) > 1]
    assert others and all(t.allowed == PARTIAL_LABELS["emocontext"]["others"] for t in others)
    assert Emotion.NEUTRAL in others[0].allowed and Emotion.ANGER not in others[0].allowed
    assert all([s for _, s in t.context] == ["user", "bot"] and t.speaker == "user" for t in turns)


def test_multi_label_lines_keep_every_label(data_root):
    goemotions = read_text_corpus("goemotions-ekman", "train", data_root)
    multi = [t for t in goemotions if len(t.allowed) > 1]
    assert 0.05 < len(multi) / len(goemotions) < 0.2  # about 9% of comments name two or more


def test_meld_context_is_the_dialogue_so_far(data_root):
    turns = read_text_corpus("meld", "dev", data_root)
    first, second = turns[0], turns[1]
    assert first.context == () and second.dialogue_id == first.dialogue_id
    assert second.context == ((first.text, first.speaker),)


def test_hash_split_is_stable_and_about_80_10_10():
    keys = [f"line {i}" for i in range(5000)]
    splits = Counter(hash_split(k) for k in keys)
    assert [hash_split(k) for k in keys[:50]] == [hash_split(k) for k in keys[:50]]
    assert 0.07 < splits["test"] / 5000 < 0.13 and 0.07 < splits["dev"] / 5000 < 0.13


def test_dailydialog_turns_alternate_speakers_and_keep_their_labels(tmp_path):
    from affect.datasets import read_dailydialog

    write_dailydialog(tmp_path)
    dialogues = read_dailydialog("test", tmp_path)
    assert [len(d) for d in dialogues] == [2, 3, 2, 2, 2]
    assert [t.speaker for t in dialogues[1]] == ["A", "B", "A"]
    assert [t.emotion for t in dialogues[1]] == [Emotion.NEUTRAL, Emotion.NEUTRAL, Emotion.ANGER]
    assert dialogues[0][1].text == "Yes , thanks . I ' m so happy the exams are over !"  # the typographic apostrophe read as '
    assert [t.emotion for t in dialogues[3]] == [Emotion.FEAR, Emotion.SURPRISE] and dialogues[3][1].sentiment is None


def test_dailydialog_refuses_labels_that_do_not_match_the_utterances(tmp_path):
    from affect.datasets import read_dailydialog

    write_dailydialog(tmp_path, sample=[("One . __eou__ Two . __eou__", "0")])
    with pytest.raises(ValueError, match="2 utterances"):
        read_dailydialog("test", tmp_path)
    with pytest.raises(Exception, match="DailyDialog validation"):
        read_dailydialog("validation", tmp_path)

"""The shipped text model on real MELD and GoEmotions data, and its input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from affect import InputTooLargeError, InvalidInputError, TextEncoder
from affect.datasets import read_meld
from affect.labels import emotion_index

from affect.text.weights import TextWeights

TEXT_MODEL_ID = TextWeights.DEFAULT.value.id  # the shipped default text model

SUBSET_DIALOGUES = 80  # the first 80 MELD test dialogues (about 700 turns)
WEIGHTED_F1_FLOOR = 0.55  # measured 0.63 on this subset; a floor, not the reported figure


@pytest.fixture(scope="module")
def meld_subset(data_root):
    return read_meld("test", data_root)[:SUBSET_DIALOGUES]


def _predict(encoder, dialogues, use_context):
    """Emotion log-probabilities as the library reports them, every turn read in batches."""
    pairs = [[(t.text, t.speaker) for t in d] for d in dialogues]
    return encoder.reported(encoder.read_dialogues(pairs, use_context=use_context))[0]


def test_scores_above_floor_on_fixed_meld_test_subset(text_encoder: TextEncoder, meld_subset):
    gold = np.array([emotion_index(t.emotion) for d in meld_subset for t in d])
    pred = _predict(text_encoder, meld_subset, use_context=True).argmax(-1).numpy()
    assert len(gold) > 500
    assert f1_score(gold, pred, average="weighted") >= WEIGHTED_F1_FLOOR


def test_streaming_path_equals_batch_path(text_encoder: TextEncoder, meld_subset):
    """Turn-by-turn analysis with a live context gives what the benchmark measures."""
    dialogue = max(meld_subset[:20], key=len)
    batch = torch.softmax(_predict(text_encoder, [dialogue], use_context=True), -1)
    streamed = text_encoder.analyze_conversation([(t.text, t.speaker) for t in dialogue])
    for row, result in zip(batch, streamed):
        assert np.allclose(row.numpy(), result.emotion_vector(), atol=1e-4)


def test_context_changes_the_answer_where_it_should(text_encoder: TextEncoder):
    """'Really?' reads differently after good news than after bad news."""
    after_good = text_encoder.analyze_conversation([
        ("I got the job! They called this morning, I start on Monday!", "A"),
        ("Really? That's the one you wanted!", "B"),
    ])[-1]
    after_bad = text_encoder.analyze_conversation([
        ("They called this morning. Grandpa passed away last night.", "A"),
        ("Really? Oh no.", "B"),
    ])[-1]
    assert after_good.valence > after_bad.valence
    assert after_bad.emotions["sadness"] > after_good.emotions["sadness"]


GOOD_NEWS = "I got the job! They called this morning, I start on Monday!"
BAD_NEWS = "They called this morning. Grandpa passed away last night."
REPLY = "I can't believe it."
CONTEXT_MARGIN = 0.02  # a change the model makes on purpose, far above float noise (1e-8)


@pytest.mark.xfail(strict=True, reason="known limitation of text-minilm-multicorpus@2 (and @5, which mixes in its reading): its context attention, trained "
                   "on MELD and EmoContext within an eight-corpus mix, makes this reply less sad after bad news "
                   "(text-minilm-meld@1 passed); see the text model card")
def test_the_same_speakers_news_moves_an_ambiguous_reply(text_encoder: TextEncoder):
    """The reply alone is ambiguous; after bad news it is sadder, after good news happier."""
    alone = text_encoder.analyze(REPLY)
    after_bad = text_encoder.analyze_conversation([BAD_NEWS, REPLY])[-1]  # speakers unknown
    after_good = text_encoder.analyze_conversation([GOOD_NEWS, REPLY])[-1]
    assert after_bad.emotions["sadness"] > alone.emotions["sadness"] + CONTEXT_MARGIN
    assert after_good.emotions["happiness"] > alone.emotions["happiness"] + CONTEXT_MARGIN


@pytest.mark.xfail(strict=True, reason="known limitation of both text models: another speaker's turns do not make "
                   "this reply sadder; see the text model card")
def test_another_speakers_news_moves_an_ambiguous_reply(text_encoder: TextEncoder):
    alone = text_encoder.analyze(REPLY)
    after_bad = text_encoder.analyze_conversation([(BAD_NEWS, "A"), (REPLY, "B")])[-1]
    assert after_bad.emotions["sadness"] > alone.emotions["sadness"] + CONTEXT_MARGIN


def test_context_is_bounded_and_keeps_no_text(text_encoder: TextEncoder):
    context = text_encoder.new_context()
    for i in range(3 * context.window):
        text_encoder.analyze(f"turn number {i}", speaker="A", context=context)
    assert len(context) == context.window
    assert all(isinstance(emb, torch.Tensor) and not isinstance(spk, bytes) for emb, spk in context.turns)


def test_results_are_distributions_with_valid_ranges(text_encoder: TextEncoder):
    r = text_encoder.analyze("I am so angry at you right now!")
    assert sum(r.emotions.values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(r.sentiments.values()) == pytest.approx(1.0, abs=1e-5)
    assert -1 <= r.valence <= 1 and -1 <= r.arousal <= 1 and 0 < r.confidence <= 1
    assert r.model == TEXT_MODEL_ID


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ("", InvalidInputError, "empty"),
        ("   \n\t ", InvalidInputError, "empty"),
        (b"\xff\xfe caf\xe9", InvalidInputError, "UTF-8"),
        ("x" * 1_000_000, InputTooLargeError, "limit"),
        (None, InvalidInputError, "string"),
        (42, InvalidInputError, "string"),
    ],
)
def test_bad_text_is_refused_with_a_clear_error(text_encoder: TextEncoder, bad, error, message):
    with pytest.raises(error, match=message) as info:
        text_encoder.analyze(bad)
    assert info.value.field == "text"


def test_utf8_bytes_are_accepted(text_encoder: TextEncoder):
    assert text_encoder.analyze("Ça va très bien, merci !".encode()).model


def test_a_refused_turn_leaves_the_context_untouched(text_encoder: TextEncoder):
    context = text_encoder.new_context()
    text_encoder.analyze("hello", context=context)
    with pytest.raises(InvalidInputError):
        text_encoder.analyze("", context=context)
    assert len(context) == 1


def test_the_expected_prior_moves_answers_in_the_documented_direction(text_encoder: TextEncoder, meld_subset):
    """A support desk's prior (mostly neutral) reads more turns as neutral than the uniform prior,
    on the same weights and the same turns."""
    from affect.text.prior import DEFAULT_PRIOR, resolve_prior

    assert text_encoder.train_meta.get("train_prior"), "the shipped text weights record their training prior"
    texts = [t.text for d in meld_subset[:30] for t in d]
    desk = {"neutral": 0.9, "happiness": 0.02, "sadness": 0.02, "anger": 0.02, "fear": 0.01, "disgust": 0.01, "surprise": 0.02}
    shares = []
    try:
        for prior in ("uniform", "conversational", desk):
            text_encoder.set_prior(prior)
            shares.append(np.mean([text_encoder.analyze(t).emotion.value == "neutral" for t in texts]))
    finally:
        text_encoder.set_prior(DEFAULT_PRIOR)
    assert shares[0] < shares[1] < shares[2], shares
    with pytest.raises(ValueError, match="not an emotion"):
        resolve_prior({"joy": 1.0})
    with pytest.raises(ValueError, match="unknown text prior"):
        resolve_prior("support-desk")


def test_each_conversation_can_have_its_own_prior_and_leaves_the_others_alone(text_encoder: TextEncoder):
    """``analyzer.conversation(text_prior=...)``: one analyzer serves a support desk and a chatbot,
    each conversation read under its own prior (the same answer as an analyzer built with that
    prior), the others under the analyzer's; "trained" overrides an analyzer's desk prior."""
    from affect import Analyzer
    from affect.text.prior import DEFAULT_PRIOR

    desk = {"neutral": 0.9, "anger": 0.05, "sadness": 0.05}
    turns = ["Hi, I'm calling about my bill.", "You charged me twice this month!", "Okay, thanks for fixing it."]
    shared = Analyzer(text=text_encoder, speech=None, face=None, forecast=None)
    with shared.conversation() as plain, shared.conversation(text_prior=desk) as at_desk:
        pairs = [(plain.analyze(text=t, speaker="c"), at_desk.analyze(text=t, speaker="c")) for t in turns]
    try:
        text_encoder.set_prior(desk)
        with shared.conversation() as reference, shared.conversation(text_prior="trained") as as_trained:
            desk_reference = [reference.analyze(text=t, speaker="c") for t in turns]
            trained_again = [as_trained.analyze(text=t, speaker="c") for t in turns]
    finally:
        text_encoder.set_prior(DEFAULT_PRIOR)
    for (a, b), c, d in zip(pairs, desk_reference, trained_again):
        assert b.emotions["neutral"] > a.emotions["neutral"]  # the desk's prior: more neutral
        assert set(b.emotions) == set(a.emotions) and b.emotions["fear"] == pytest.approx(0.0, abs=1e-6)
        assert b.emotions == pytest.approx(c.emotions, abs=1e-6)  # as an analyzer with that prior reads it
        assert d.emotions == pytest.approx(a.emotions, abs=1e-6)  # "trained" here undoes the analyzer's prior
    with pytest.raises(ValueError, match="unknown text prior"):
        shared.conversation(text_prior="support-desk")


def test_a_prior_written_on_a_command_line_is_read_as_the_library_reads_a_mapping():
    """``parse_prior`` (the CLI's and the server's ``--text-prior``): presets by name, emotion=weight
    pairs as a mapping that resolves like the same dict, and each mistake named."""
    from affect.text.prior import DEFAULT_PRIOR, PRIOR_PRESETS, parse_prior, resolve_prior

    assert DEFAULT_PRIOR in PRIOR_PRESETS
    for name in PRIOR_PRESETS:
        assert parse_prior(f" {name} ") == name
    assert resolve_prior(parse_prior("neutral=1e-300"))[0] == 1 and resolve_prior(parse_prior("neutral=1e300,anger=1e299"))[0] > 0.9
    written = parse_prior("neutral=0.8, anger=0.15,sadness=0.05")
    assert torch.equal(resolve_prior(written), resolve_prior({"neutral": 0.8, "anger": 0.15, "sadness": 0.05}))
    for text, words in [("support-desk", "unknown text prior"), ("neutral=lots", "is not emotion=weight"),
                        ("calm=1", "not an emotion"), ("neutral=-0.1", "finite number >= 0"),
                        ("neutral=nan", "finite number >= 0"), ("neutral=inf", "finite number >= 0"),
                        ("neutral=0,anger=0", "positive weight"), ("neutral=0.5,neutral=0.4", "twice"),
                        (",".join(f"e{i}=1" for i in range(100)), "at most 512"), ("neutral=1e308,anger=1e308", "too large")]:
        with pytest.raises(ValueError, match=words):
            parse_prior(text)


def test_v3_ships_only_its_adapted_layers_and_reads_the_rest_from_round_1():
    """text-minilm-multicorpus@3 stores MiniLM layers 4-5 and the heads; the embeddings and layers
    0-3 come from round 1's file, and the stored layers are not round 1's."""
    from affect.text._weights_io import read_text_weights

    tensors, header = read_text_weights(TextWeights.MINILM_MULTICORPUS_V3.value.verified_path())
    layers = {name.split(".")[3] for name in tensors if name.startswith("encoder.")}
    assert layers == {"4", "5"} and header["encoder_from"] == TextWeights.MINILM_MELD_V1.value.path.name
    round1, _ = read_text_weights(TextWeights.MINILM_MELD_V1.value.verified_path())
    name = "encoder.encoder.layer.5.output.dense.weight"
    assert not torch.allclose(tensors[name], round1[name])


def test_the_context_weight_mixes_the_readings_with_and_without_past_turns(text_encoder: TextEncoder, meld_subset):
    """0 ignores the past turns, 1 reads with them only; the shipped entry's weight gives exactly that
    mixture of the two distributions, turn by turn as in the batch path."""
    dialogue = max(meld_subset[:20], key=len)
    turns = [(t.text, t.speaker) for t in dialogue]
    weight = text_encoder.context_weight
    assert 0.0 < weight < 1.0, "the shipped default mixes the two readings (chosen on held-out dialogue)"
    readings = {w: np.array([r.emotion_vector() for r in TextEncoder(context_weight=w).analyze_conversation(turns)])
                for w in (0.0, 1.0)}
    alone = np.array([text_encoder.analyze(text, speaker=speaker).emotion_vector() for text, speaker in turns])
    assert np.allclose(readings[0.0], alone, atol=1e-5)
    assert not np.allclose(readings[1.0], alone, atol=1e-2)  # the past turns do move answers
    mixed = np.array([r.emotion_vector() for r in text_encoder.analyze_conversation(turns)])
    assert np.allclose(mixed, weight * readings[1.0] + (1 - weight) * readings[0.0], atol=1e-5)
    with pytest.raises(InvalidInputError) as info:
        TextEncoder(context_weight=1.5)
    assert info.value.field == "context_weight"


def test_a_server_setting_reaches_the_text_encoders_context_weight():
    """``--text-context-weight`` / ``AFFECT_TEXT_CONTEXT_WEIGHT`` sets the weight; unset, the
    weights entry's own value stays."""
    from affect import Analyzer
    from affect_server.config import ServerConfig

    for env, expected in (({"AFFECT_TEXT_CONTEXT_WEIGHT": "1"}, 1.0), ({}, TextWeights.DEFAULT.meta["context_weight"])):
        options = ServerConfig.from_args(env=env).encoder_options()
        assert Analyzer(speech=None, face=None, forecast=None, encoder_options=options).text.context_weight == expected


# A fixed subset of every corpus (its first 300 single-label test turns, each with its own past turns):
# macro-F1 over the emotions the corpus names. Floors about 0.09 under the lower of the @5 and @6 readings
# measured (text-minilm-multicorpus@5 / @6, 2026-12-04; @7, 2026-12-05): they catch a broken model, they are not the figures.
CORPUS_SUBSET_TURNS = 300
CORPUS_MACRO_F1_FLOORS = {
    "meld": 0.30,                # measured 0.487 / 0.392 / 0.465
    "goemotions-ekman": 0.42,    # 0.516 / 0.552 / 0.557
    "dair-emotion": 0.50,        # 0.592 / 0.793 / 0.774
    "emocontext": 0.75,          # 0.876 / 0.847 / 0.849
    "xed": 0.27,                 # 0.368 / 0.356 / 0.388
    "isear": 0.55,               # 0.643 / 0.708 / 0.719
    "semeval2018-ec": 0.45,      # 0.605 / 0.546 / 0.611
    "hashtag": 0.32,             # 0.402 / 0.420 / 0.404
}


@pytest.mark.parametrize("weights", ["MINILM_MULTICORPUS_V5", "MINILM_MULTICORPUS_V6", "MINILM_MULTICORPUS_V7"])
def test_a_fixed_subset_of_every_corpus_scores_above_its_floor(data_root, weights):
    from affect.datasets.text_corpora import read_text_corpus
    from affect.labels import EMOTIONS, corpus_emotions

    encoder = TextEncoder(weights=weights)
    for corpus, floor in CORPUS_MACRO_F1_FLOORS.items():
        turns = [t for t in read_text_corpus(corpus, "test", data_root) if t.single is not None][:CORPUS_SUBSET_TURNS]
        pairs = [[*t.context[-8:], (t.text, t.speaker)] for t in turns]
        emotion = encoder.reported(encoder.read_dialogues(pairs).last_turns([len(p) for p in pairs]))[0]
        pred = emotion.argmax(-1).numpy()
        gold = [EMOTIONS.index(t.single) for t in turns]
        names = [EMOTIONS.index(e) for e in corpus_emotions(corpus)]
        assert len(turns) == CORPUS_SUBSET_TURNS
        assert f1_score(gold, pred, labels=names, average="macro", zero_division=0) >= floor, corpus


def test_v6_ships_its_whole_fine_tuned_encoder_but_the_frozen_word_embeddings_and_lowest_layer():
    """text-minilm-multicorpus@6 was fine-tuned from the packaged MiniLM, not from round 1: its file
    holds layers 1-5 and the heads, reads nothing from round 1's file, and loads offline."""
    from affect.text._weights_io import read_text_weights

    tensors, header = read_text_weights(TextWeights.MINILM_MULTICORPUS_V6.value.verified_path())
    layers = {name.split(".")[3] for name in tensors if name.startswith("encoder.encoder.layer.")}
    assert layers == {"1", "2", "3", "4", "5"} and "encoder_from" not in header
    assert not any(name.startswith("encoder.embeddings.") for name in tensors)
    result = TextEncoder(weights="text-minilm-multicorpus@6").analyze("I can't stop smiling, this is the best news ever!")
    assert result.emotion == "happiness"


def test_a_long_text_is_read_to_its_end_within_a_bounded_number_of_windows(text_encoder: TextEncoder):
    """What a long message says after the network's first 96 word pieces was never read: an
    angry close after a neutral account read exactly as the account alone. Text within one
    window reads as before, and a text of many windows costs at most ``MAX_WINDOWS`` of them."""
    from affect.text._batching import MAX_WINDOWS, embed_texts, text_windows, tokenize

    account = ("I wanted to write to you about the order I placed last month for a set of kitchen chairs and the "
               "table that goes with them, which was delivered on Tuesday afternoon by the usual courier. ") * 4
    alone, with_close = (text_encoder.analyze(t).emotions["anger"] for t in (account, account + "I hate you, I am furious!"))
    assert with_close > alone + 0.2, (alone, with_close)

    short = ["hi", "Where is my parcel?", "a " * 94]  # the last fills one window exactly
    with torch.inference_mode():
        truncated = text_encoder.net.embed(**tokenize(text_encoder.tokenizer, short, text_encoder.max_tokens))
        windowed = embed_texts(text_encoder.net, text_encoder.tokenizer, short, max_tokens=text_encoder.max_tokens)
    assert torch.equal(truncated, windowed)

    pieces = list(range(1000, 1000 + 2000))  # 2,000 word pieces: 22 windows, read as the first and last two
    windows = text_windows(text_encoder.tokenizer, pieces, text_encoder.max_tokens)
    assert len(windows) == MAX_WINDOWS and all(len(w) <= text_encoder.max_tokens for w in windows)
    assert windows[0][1] == pieces[0] and windows[-1][-2] == pieces[-1]

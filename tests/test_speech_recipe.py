"""The speech recipe's per-corpus label sets: a corpus teaches nothing about the labels it lacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recipes.speech_multicorpus.train import Items, corpus_label_sets, label_set_loss


def test_with_every_label_present_it_is_the_smoothed_cross_entropy():
    logits, labels = torch.randn(6, 7), torch.tensor([0, 1, 2, 3, 4, 5])
    every = torch.ones(6, 7, dtype=torch.bool)
    assert torch.allclose(label_set_loss(logits, labels, every, 0.1), F.cross_entropy(logits, labels, label_smoothing=0.1), atol=1e-6)


def test_labels_a_corpus_lacks_get_no_gradient_and_no_smoothing_mass():
    logits = torch.randn(2, 7, requires_grad=True)
    present = torch.zeros(2, 7, dtype=torch.bool)
    present[:, :4] = True  # four labels, as URDU has
    label_set_loss(logits, torch.tensor([0, 3]), present, 0.1).backward()
    assert torch.all(logits.grad[:, 4:] == 0) and torch.all(logits.grad[:, :4].abs().sum(1) > 0)
    full = torch.ones(2, 7, dtype=torch.bool)
    assert not torch.allclose(label_set_loss(logits.detach(), torch.tensor([0, 3]), present, 0.1),
                              label_set_loss(logits.detach(), torch.tensor([0, 3]), full, 0.1))


def test_each_corpus_label_set_is_what_its_items_carry():
    n = 5
    items = Items([torch.zeros(1, 1)] * n, np.array([0, 1, 2, 0, 6]), np.array(["urdu", "urdu", "urdu", "emodb", "emodb"]),
                  np.array(["train"] * n), np.zeros(n, int), np.arange(n), np.array(["wideband"] * n), np.array(["urdu:a"] * n))
    sets = corpus_label_sets(items)
    assert sets["urdu"].nonzero().flatten().tolist() == [0, 1, 2]
    assert sets["emodb"].nonzero().flatten().tolist() == [0, 6]


def test_first_outputs_keeps_the_first_blocks_and_the_head_reads_that_many():
    from affect.speech._backbone import backbone_spec
    from affect.speech._network import SpeechEmotionHead
    from recipes.speech_multicorpus.train import first_outputs, head_shape

    spec = backbone_spec("whisper-tiny.en-layers")
    dim = spec.feature_dim // spec.layers
    frames = torch.arange(4 * spec.feature_dim, dtype=torch.float32).reshape(4, spec.feature_dim)
    items = Items([frames], np.array([0]), np.array(["ravdess"]), np.array(["train"]), np.array([0]), np.array([0]),
                  np.array(["wideband"]), np.array(["ravdess:01"]))
    cfg = {"head": {}, "encoder_outputs": 3}
    cut = first_outputs(items, spec, cfg)
    torch.testing.assert_close(cut.feats[0], frames[:, : 3 * dim])  # the input to block 1, then blocks 1 and 2
    in_dim, layers = head_shape(spec, cfg)
    assert (in_dim, layers) == (dim, 3)
    head = SpeechEmotionHead(in_dim=in_dim, hidden=8, layers=layers)
    assert head(cut.feats[0][None], torch.ones(1, 4, dtype=torch.bool)).shape == (1, 7)
    assert first_outputs(items, spec, {"head": {}}) is items  # every output kept: nothing cut
    assert head_shape(spec, {"head": {}}) == (dim, spec.layers)


def test_held_out_scores_count_every_answer_per_copy():
    from affect.speech._network import SpeechEmotionHead
    from recipes.speech_multicorpus.train import held_out_scores
    from recipes.speech_ravdess.train import predict

    torch.manual_seed(0)
    n = 12
    feats = [torch.randn(5 + i % 3, 16) * (1 + i) for i in range(n)]
    items = Items(feats, np.arange(n) % 4, np.array(["emodb"] * n), np.array(["test"] * n), np.arange(n) % 2,
                  np.arange(n), np.array(["wideband"] * n), np.array(["emodb:03"] * n))
    net = SpeechEmotionHead(in_dim=16, hidden=8).eval()
    scores = held_out_scores(net, items)
    pred = predict(net, feats).argmax(-1).numpy()
    for variant, copy in ((0, "clean"), (1, "telephone")):
        answers = scores[f"answers_{copy}"]
        assert len(answers) == 7 and sum(answers) == scores[f"clips_{copy}"] == n // 2
        assert answers == np.bincount(pred[items.variants == variant], minlength=7).tolist()
        assert scores[f"max_predicted_share_{copy}"] == max(answers) / sum(answers)


def test_speaker_shares_name_the_voice_read_as_one_emotion():
    from evaluation.answer_shares import SPEAKER_SHARE_MIN_CLIPS, speaker_max_shares

    n = SPEAKER_SHARE_MIN_CLIPS
    pred = np.array([2] * n + list(range(7)) * 3 + [0] * (n - 1))  # one voice all sad, one balanced, one too short
    speakers = np.array(["emovo:m3"] * n + ["emovo:f1"] * 21 + ["emodb:03"] * (n - 1))
    shares = speaker_max_shares(pred, speakers)
    assert shares == {"emovo:m3": 1.0, "emovo:f1": round(3 / 21, 3)}


def test_answer_counts_leave_no_speech_out_and_cover_every_class():
    from evaluation.answer_shares import answer_counts

    pred = np.array([6, 0, -1, 0, 3, -1])  # -1: the VAD found no speech
    assert answer_counts(pred, 7) == [2, 0, 0, 1, 0, 0, 1]
    assert answer_counts(np.array([], dtype=int), 7) == [0] * 7


def test_speaker_shift_moves_a_clip_along_voice_directions_only():
    from recipes.speech_multicorpus.train import SpeakerShift, speaker_shift

    # two corpora, two speakers each; each speaker's clips sit at its own offset along feature 0
    # (corpus A) or feature 1 (corpus B); features 2-3 carry only within-speaker noise
    torch.manual_seed(0)
    feats, corpora, speakers = [], [], []
    for corpus, axis in (("a", 0), ("b", 1)):
        for speaker, offset in (("s1", 1.0), ("s2", -1.0)):
            for _ in range(6):
                x = torch.randn(5, 4) * 0.1
                x[:, axis] += offset + (3.0 if corpus == "b" else 0.0)  # corpus B's mean far away: offsets are within-corpus
                feats.append(x), corpora.append(corpus), speakers.append(f"{corpus}:{speaker}")
    n = len(feats)
    items = Items(feats, np.zeros(n, int), np.array(corpora), np.array(["train"] * n), np.zeros(n, int), np.arange(n),
                  np.array(["wideband"] * n), np.array(speakers))
    shift = SpeakerShift(items, 1.0)
    assert shift.offsets.shape == (4, 4)
    torch.testing.assert_close(shift.offsets.abs()[:, :2].max(0).values, torch.ones(2), atol=0.1, rtol=0)
    moved = [shift(feats[0], np.random.default_rng(i)) - feats[0] for i in range(50)]
    assert all(torch.allclose(m, m[:1].expand_as(m)) for m in moved)  # one offset for every frame of the clip
    spread = torch.stack([m[0] for m in moved]).std(0)
    assert spread[:2].min() > 0.3 and spread[2:].max() < 0.1  # along the voice axes, hardly across the rest
    assert speaker_shift({}, items) is None and speaker_shift({"speaker_shift": 0.5}, items).scale == 0.5


def test_a_label_recorded_apart_from_its_corpus_is_left_out_and_only_it():
    from recipes.speech_multicorpus.train import confounded_labels, without_confounded

    # URDU-like: sadness band-limited half the time, neutral 10%, happiness 5%, anger never; one
    # EmoDB-like corpus all wideband. Against the other labels pooled (22%), anger (0%) would look odd too.
    narrow_share = {0: 0.10, 1: 0.05, 2: 0.50, 3: 0.0}
    labels, corpora, channels, variants, splits = [], [], [], [], []
    for label, share in narrow_share.items():
        for i in range(20):
            for variant in (0, 1):
                labels.append(label), corpora.append("urdu"), variants.append(variant), splits.append("train")
                channels.append("narrowband" if variant == 1 or i < share * 20 else "wideband")
    for label in range(6):
        for i in range(10):
            labels.append(label), corpora.append("emodb"), variants.append(0), splits.append("train"), channels.append("wideband")
    n = len(labels)
    items = Items([torch.zeros(1, 1)] * n, np.array(labels), np.array(corpora), np.array(splits), np.array(variants),
                  np.arange(n), np.array(channels), np.array([f"{c}:a" for c in corpora]))
    assert confounded_labels(items, 0.2) == [("urdu", 2)]
    assert confounded_labels(items, 0.5) == []
    kept = without_confounded(items, {"confounded_labels": 0.2})
    assert len(kept) == n - 40 and not ((kept.corpora == "urdu") & (kept.labels == 2)).any()  # both copies of its 20 clips
    assert without_confounded(items, {}) is items


def test_channel_balanced_draws_give_every_class_the_same_channel_mix():
    from recipes.speech_multicorpus.train import sampling_weights

    # one corpus: class 0 mostly narrowband, class 1 mostly wideband, class 2 wideband only
    channels = ["narrowband"] * 8 + ["wideband"] * 2 + ["narrowband"] * 1 + ["wideband"] * 9 + ["wideband"] * 5
    labels = [0] * 10 + [1] * 10 + [2] * 5
    n = len(labels)
    items = Items([torch.zeros(1, 1)] * n, np.array(labels), np.array(["urdu"] * n), np.array(["train"] * n), np.zeros(n, int),
                  np.arange(n), np.array(channels), np.array(["urdu:a"] * n))
    narrow = items.channels == "narrowband"
    plain = sampling_weights(items, "corpus_class")
    balanced = sampling_weights(items, "corpus_class_channel")
    for w in (plain, balanced):
        np.testing.assert_allclose([w[items.labels == c].sum() for c in range(3)], [1 / 3] * 3)  # classes still equal
    np.testing.assert_allclose([plain[(items.labels == c) & narrow].sum() * 3 for c in (0, 1)], [0.8, 0.1])
    np.testing.assert_allclose([balanced[(items.labels == c) & narrow].sum() * 3 for c in (0, 1)], [0.5, 0.5])
    np.testing.assert_allclose(balanced[(items.labels == 2) & ~narrow].sum() * 3, 1.0)  # a class with one channel keeps all its draws


def test_emovo_names_give_the_seven_emotions_and_split_by_actor(tmp_path):
    """EMOVO's reader (built by recipes/speech_multicorpus/build_emovo.sh): the emotion comes from the
    Italian prefix of ``<emotion>-<actor>-<sentence>.wav``, the speaker from the actor, and the split
    keeps one actor for validation and one for test, never by clip."""
    from affect.datasets.speech import SPEAKER_SPLITS, read_speech_corpus
    from affect.labels import Emotion

    prefixes = {"neu": Emotion.NEUTRAL, "gio": Emotion.HAPPINESS, "tri": Emotion.SADNESS, "rab": Emotion.ANGER,
                "pau": Emotion.FEAR, "dis": Emotion.DISGUST, "sor": Emotion.SURPRISE}
    for actor in ("f1", "f3", "m3"):
        (tmp_path / "emovo" / actor).mkdir(parents=True)
        for prefix in prefixes:
            (tmp_path / "emovo" / actor / f"{prefix}-{actor}-b1.wav").write_bytes(b"")
    clips = read_speech_corpus("emovo", tmp_path)
    assert len(clips) == 21
    assert all(c.emotion == prefixes[c.label] and c.path.stem.split("-")[1] == c.speaker for c in clips)
    assert {c.speaker for c in read_speech_corpus("emovo", tmp_path, "test")} == set(SPEAKER_SPLITS["emovo"]["test"]) == {"m3"}
    assert {c.speaker for c in read_speech_corpus("emovo", tmp_path, "validation")} == {"f3"}
    assert {c.speaker for c in read_speech_corpus("emovo", tmp_path, "train")} == {"f1"}


def test_tess_is_read_whole_as_voices_no_model_heard(tmp_path):
    """TESS's reader (recipes/speech_multicorpus/build_tess.sh): speaker and emotion from the folder
    ``<SPEAKER>_<emotion>``, every clip "test" (it is never trained on), and not a training corpus."""
    from affect.datasets.speech import SPEECH_CORPORA, UNHEARD_SPEECH_CORPORA, read_speech_corpus
    from affect.labels import Emotion

    for folder in ("OAF_angry", "OAF_pleasant_surprise", "YAF_Sad"):
        (tmp_path / "tess" / folder).mkdir(parents=True)
        (tmp_path / "tess" / folder / "OA_bite.wav").write_bytes(b"")  # the speaker is the folder's, not the file's
    clips = read_speech_corpus("tess", tmp_path)
    assert [(c.speaker, c.emotion) for c in clips] == [("OAF", Emotion.ANGER), ("OAF", Emotion.SURPRISE), ("YAF", Emotion.SADNESS)]
    assert len(read_speech_corpus("tess", tmp_path, "test")) == 3 and not read_speech_corpus("tess", tmp_path, "train")
    assert "tess" in UNHEARD_SPEECH_CORPORA and "tess" not in SPEECH_CORPORA


def test_folds_run_apart_make_one_leave_one_corpus_out_result(tmp_path):
    import json

    from recipes.speech_multicorpus.train import run_loco

    def fold(corpus: str, clean: float) -> dict:
        scores = {"uar_clean": clean, "uar_telephone": clean - 0.1}
        return {"backbone": "b", "variant": "v", "corpora": {corpus: scores | {"adapted": scores, "converged": scores}}}

    cfg = {"corpora": ["ravdess", "emodb"], "standardise": "corpus", "variants": {"v": {}}}
    for corpus, clean in (("ravdess", 0.4), ("emodb", 0.6)):
        (tmp_path / f"loco-b-layer-v-only-{corpus}.json").write_text(json.dumps(fold(corpus, clean)))
    result = run_loco(cfg, tmp_path / "no-cache", tmp_path, "b", "layer", "v")  # nothing trained: the cache is not read
    assert sorted(result["corpora"]) == ["emodb", "ravdess"] and result["folds_run_apart"]
    assert abs(result["mean_uar_clean"] - 0.5) < 1e-9 and abs(result["adapted_mean_uar_telephone"] - 0.4) < 1e-9
    assert json.loads((tmp_path / "loco-b-layer-v.json").read_text()) == result


def test_the_speaker_adversary_reads_only_speakers_whose_labels_are_spread_as_their_corpus():
    from recipes.speech_multicorpus.train import GroupAdversary, adversary_speakers

    # an acted corpus (each actor every label) and a talk-show corpus (each speaker one label)
    clips = [("acted", f"acted:{actor}", label) for actor in ("a1", "a2", "a3") for label in range(4)]
    clips += [("show", f"show:s{label}", label) for label in range(4)]
    corpora, speakers, labels = (list(column) for column in zip(*(clip for clip in clips for _ in range(3))))
    n = len(labels)
    items = Items([torch.zeros(2, 4)] * n, np.array(labels), np.array(corpora), np.array(["train"] * n),
                  np.zeros(n, int), np.arange(n), np.array(["wideband"] * n), np.array(speakers))
    groups = adversary_speakers(items, 0.25)
    assert set(groups[np.array(corpora) == "acted"]) == {"acted:a1", "acted:a2", "acted:a3"}
    assert set(groups[np.array(corpora) == "show"]) == {""}
    assert set(adversary_speakers(items, 0.8)) == set(speakers)  # a looser bound lets the one-label speakers in

    torch.manual_seed(0)
    adversary = GroupAdversary(4, groups, 0.3, ramp=True)
    assert adversary.active and adversary.names == ["acted:a1", "acted:a2", "acted:a3"]
    pooled = torch.randn(n, 4, requires_grad=True)
    start, _, _ = adversary.loss(pooled, groups, progress=0.0)
    loss, right, read = adversary.loss(pooled, groups, progress=1.0)
    assert float(start.detach()) == 0.0 and read == 36 and 0 <= right <= read  # the ramp starts at nothing
    loss.backward()
    assert pooled.grad[np.flatnonzero(groups == "")].abs().max() == 0  # unread clips get no gradient
    # the reversed gradient: a step along the summary's gradient makes the adversary's guess better
    with torch.no_grad():
        stepped = pooled + 0.5 * pooled.grad
    assert float(adversary.loss(stepped, groups)[0]) < float(loss.detach())
    assert not GroupAdversary(4, groups, 0.0).active and not GroupAdversary(4, np.array(["", "x"]), 0.3).active


def test_uar_counts_only_the_classes_the_labels_have():
    from evaluation.recall import accuracy, uar

    gold = np.array([0, 0, 0, 0, 1, 1])
    assert uar(gold, np.array([0, 0, 0, 0, 0, 0])) == 0.5  # one class for all: half the classes, whatever accuracy says
    assert accuracy(gold, np.array([0, 0, 0, 0, 0, 0])) == 4 / 6
    assert uar(gold, np.array([0, 0, 0, 5, 1, 1])) == (3 / 4 + 1) / 2  # an answer outside the labels is only a miss


def test_a_variant_that_changes_the_augmentation_names_its_own_cache(tmp_path):
    import json

    from recipes._variants import with_variant
    from recipes.speech_multicorpus.features import HERE, augment_tag, cache_path

    base = json.loads((HERE / "config.json").read_text())
    base["variants"]["untagged"] = {"augment": {"p_tempo": 0.5, "tempo": [0.8, 1.25]}}
    with pytest.raises(ValueError, match="augment_tag"):
        augment_tag(base, with_variant(base, "untagged"))
    tagged = next(name for name, v in base["variants"].items() if "augment_tag" in v)
    tag = augment_tag(base, with_variant(base, tagged))
    assert tag and augment_tag(base, with_variant(base, None)) == ""
    assert cache_path(tmp_path, "b", "emodb", 4, tag) != cache_path(tmp_path, "b", "emodb", 4)


def test_the_delivery_probe_changes_one_thing_at_a_time(data_root):
    from affect.datasets.ravdess import read_test_slice
    from affect.speech._audio import MODEL_RATE, prepare_file
    from affect.speech.augment import level_dbfs
    from recipes.speech_multicorpus.delivery_probe import changes

    voice = prepare_file(read_test_slice(data_root)[0].path).samples
    changed = {name: change(voice) for name, change in changes(np.random.default_rng(0)).items()}
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in changed.values())
    assert len(changed["as they are"]) == len(voice)
    assert len(changed["1 s of silence added each side"]) == len(voice) + 2 * MODEL_RATE
    assert len(changed["the clip said twice"]) == 2 * len(voice)
    assert len(changed["30% faster, same pitch"]) == pytest.approx(len(voice) / 1.3, rel=1e-3)
    assert len(changed["3 semitones lower, same tempo"]) == pytest.approx(len(voice), rel=0.01)  # tempo kept
    assert level_dbfs(changed["20 dB quieter"]) == pytest.approx(level_dbfs(voice) - 20, abs=0.1)
    assert level_dbfs(changed["levelled to -20 dBFS"]) == pytest.approx(-20, abs=0.1)

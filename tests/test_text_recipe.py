"""The multi-corpus text recipe: pseudo-context, epochs and targets, the teacher, starts, and mpnet's cached lower layers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch

from recipes.text_multicorpus.heads import Batchable, PseudoContext


def batch(corpora: list[str], window: int = 4, dim: int = 8) -> Batchable:
    n = len(corpora)
    current = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, dim)  # row i holds the value i
    context = torch.zeros(n, window, dim)
    mask = torch.zeros(n, window, dtype=torch.bool)
    for i, c in enumerate(corpora):
        if c == "meld":  # a dialogue turn with two real past turns
            context[i, :2] = -1.0
            mask[i, :2] = True
    relation = torch.full((n, window), 2, dtype=torch.long)
    allowed = torch.ones(n, 7, dtype=torch.bool)
    return Batchable(current, context, mask, relation, allowed, torch.full((n,), -1), np.array(corpora),
                     np.array(["train"] * n))


def test_single_sentence_turns_get_unrelated_turns_of_their_own_corpus_and_dialogue_keeps_its_own():
    corpora = ["isear"] * 20 + ["hashtag"] * 20 + ["meld"] * 20
    data = batch(corpora)
    pseudo = PseudoContext(data, p=1.0)
    idx = torch.arange(len(corpora))
    gen = torch.Generator().manual_seed(0)
    context, mask, relation = pseudo.fill(idx, data.context, data.mask, data.relation, gen)
    for i, corpus in enumerate(corpora):
        if corpus == "meld":
            assert torch.equal(context[i], data.context[i]) and torch.equal(mask[i], data.mask[i])
            continue
        k = int(mask[i].sum())
        assert k >= 1 and mask[i, :k].all()  # most recent first, contiguous
        own = set(np.flatnonzero(np.array(corpora) == corpus).tolist())
        assert {int(v) for v in context[i, :k, 0].tolist()} <= own  # turns of its own corpus
        assert set(relation[i, :k].tolist()) <= {0, 1}
    assert not data.mask[:40].any()  # the data itself is left as it was


def test_shuffle_swaps_what_a_dialogues_past_turns_said_not_how_many_or_who():
    corpora = ["isear"] * 10 + ["meld"] * 10
    data = batch(corpora)
    data.relation[10:, :2] = torch.tensor([0, 1])
    pseudo = PseudoContext(data, p=0.0, shuffle=1.0)
    context, mask, relation = pseudo.fill(torch.arange(20), data.context, data.mask, data.relation,
                                          torch.Generator().manual_seed(1))
    assert not mask[:10].any()  # p = 0: single sentences stay without context
    assert torch.equal(mask[10:], data.mask[10:]) and torch.equal(relation[10:], data.relation[10:])
    assert (context[10:, :2, 0] >= 10).all()  # the two real turns replaced by meld turns (values 10-19)


# The end-to-end recipe (finetune.py): how turns become the units a batch reads in order.

import random  # noqa: E402

from affect.datasets.text_corpora import read_text_corpus  # noqa: E402
from recipes.text_multicorpus.finetune import Unit, epoch_units, pseudo_dialogues, targets  # noqa: E402

FINETUNE_CFG = {"seed": 3, "context_window": 8, "pseudo_context": 0.8,
                "per_epoch": {"meld": 20, "goemotions-ekman": 50, "default": 30}}


def test_an_epoch_keeps_meld_dialogues_whole_emocontext_with_its_past_and_single_sentences_in_pseudo_dialogues():
    train = {c: read_text_corpus(c, "train") for c in ("meld", "emocontext", "isear")}
    units = epoch_units(train, FINETUNE_CFG, epoch=0)
    labelled = [t for u in units for t in u.labelled if t is not None]
    by_corpus = {c: [t for t in labelled if t.corpus == c] for c in train}
    assert len(by_corpus["emocontext"]) == 30 and len(by_corpus["isear"]) == 30
    meld_units = [u for u in units if u.labelled[-1] is not None and u.labelled[-1].corpus == "meld"]
    assert len(meld_units) == 20
    for u in meld_units:  # a whole dialogue, every turn labelled, in the order spoken
        ids = {t.dialogue_id for t in u.labelled}
        assert len(ids) == 1 and all(t is not None for t in u.labelled)
        assert all(t.context[-1][0] == u.texts[i] for i, t in enumerate(u.labelled[1:]))
    chats = [u for u in units if u.labelled[-1].corpus == "emocontext"]
    assert all(u.labelled[:-1] == (None, None) and u.texts[:-1] == tuple(t for t, _ in u.labelled[-1].context) for u in chats)
    isear = [u for u in units if u.labelled[-1].corpus == "isear"]
    in_pseudo = sum(len(u.texts) for u in isear if len(u.texts) > 1)
    assert in_pseudo == 24  # 80% of the 30 sentences
    assert all(len(u.texts) <= 9 and {t.corpus for t in u.labelled} == {"isear"} for u in isear)
    assert epoch_units(train, FINETUNE_CFG, epoch=0) == units  # a resumed epoch draws the same
    assert epoch_units(train, FINETUNE_CFG, epoch=1) != units


def test_a_meld_weighted_stage_draws_the_same_dialogues_again_and_the_other_corpora_once():
    train = {c: read_text_corpus(c, "train") for c in ("meld", "isear")}
    once = epoch_units(train, FINETUNE_CFG, epoch=0)
    twice = epoch_units(train, FINETUNE_CFG | {"meld_repeats": 2}, epoch=0)

    def dialogues(units):
        return sorted(u.labelled[0].dialogue_id for u in units if u.labelled[0] is not None and u.labelled[0].corpus == "meld")

    assert dialogues(twice) == sorted(dialogues(once) * 2)
    assert sum(u.labelled[-1].corpus == "isear" for u in twice) == sum(u.labelled[-1].corpus == "isear" for u in once)


def test_targets_are_the_labelled_rows_with_their_sets_and_known_sentiments():
    turns = [t for t in read_text_corpus("emocontext", "train")[:40] if t.single is None][:2]  # "others": a set
    units = [Unit(("hi", "there", turns[0].text), ("user", "bot", "user"), (None, None, turns[0])),
             *pseudo_dialogues([turns[1]], 0.0, 8, random.Random(0))]
    taught = targets(units)
    assert taught.rows.tolist() == [2, 3]
    assert taught.allowed.sum(1).tolist() == [len(turns[0].allowed), len(turns[1].allowed)] and taught.allowed.sum(1).min() > 1
    assert taught.sentiment.shape == (2,)
    assert taught.turns == [turns[0], turns[1]]


from recipes.text_multicorpus.dev_compare import DevReadings  # noqa: E402
from recipes.text_multicorpus.finetune import HERE, batch_loss, build_net, distill_loss, finetune_config, run_units  # noqa: E402
from recipes.text_multicorpus.teacher import drawn_turns  # noqa: E402
from recipes.text_multicorpus.teacher_table import TeacherTable, averaged_log_probs, turn_key  # noqa: E402


def test_the_teacher_reads_each_drawn_turn_once_meld_as_whole_dialogues_and_chats_with_their_past():
    train = {c: read_text_corpus(c, "train") for c in ("meld", "emocontext", "isear")}
    cfg = FINETUNE_CFG | {"epochs": 2}
    dialogues, singles = drawn_turns(train, cfg)
    drawn = {turn_key(t) for e in range(2) for u in epoch_units(train, cfg, e) for t in u.labelled if t is not None}
    read = [t for d in dialogues for t in d] + singles
    assert len(read) == len({turn_key(t) for t in read}) == len(drawn)  # every drawn turn, once
    assert {turn_key(t) for t in read} == drawn
    assert all(len({t.dialogue_id for t in d}) == 1 for d in dialogues)
    assert not any(t.corpus == "meld" for t in singles)
    chat = next(t for t in singles if t.corpus == "emocontext")
    same_text_elsewhere = dataclasses.replace(chat, context=())  # the key holds the real past turns
    assert turn_key(same_text_elsewhere) != turn_key(chat)


def test_the_teacher_reads_every_meld_dialogue_even_those_that_open_with_the_same_line():
    train = {"meld": read_text_corpus("meld", "train")}
    cfg = FINETUNE_CFG | {"epochs": 1, "per_epoch": {"meld": None, "default": 0}}
    dialogues, _ = drawn_turns(train, cfg)
    openers = [turn_key(d[0]) for d in dialogues]
    assert len(set(openers)) < len(openers)  # MELD has dialogues that open alike ("Hey!")...
    assert len(dialogues) == len({t.dialogue_id for t in train["meld"]})  # ...and each is read
    assert {turn_key(t) for d in dialogues for t in d} == {turn_key(t) for t in train["meld"]}


def test_distillation_pulls_towards_the_teacher_and_ignores_turns_it_never_read(tmp_path):
    turns = read_text_corpus("isear", "train")[:3]
    teacher_emo = torch.log_softmax(torch.tensor([[3.0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 3.0, 0, 0, 0]]), -1)
    teacher_sent = torch.log_softmax(torch.tensor([[2.0, 0, 0], [0, 0, 2.0]]), -1)
    torch.save({"weights": ["A", "B"], "keys": [turn_key(t) for t in turns[:2]], "emotion": teacher_emo,
                "sentiment": teacher_sent}, tmp_path / "t.pt")
    table = TeacherTable(tmp_path / "t.pt")
    cfg = {"sentiment_loss_weight": 0.5}
    found, _, _ = table.lookup(turns)
    assert found.tolist() == [True, True, False]
    agreeing = distill_loss(torch.cat([teacher_emo, torch.zeros(1, 7)]), torch.cat([teacher_sent, torch.zeros(1, 3)]),
                            turns, table, cfg)
    assert abs(float(agreeing)) < 1e-6  # the unread third turn adds nothing
    student = torch.zeros(3, 7, requires_grad=True)
    loss = distill_loss(student, torch.zeros(3, 3), turns, table, cfg)
    assert loss.item() > 0.1
    loss.backward()
    assert student.grad[0, 0] < 0 and student.grad[1, 3] < 0  # raising the teacher's class lowers the loss
    assert torch.equal(student.grad[2], torch.zeros(7))


def test_entries_averaged_are_their_renormalised_geometric_mean_whoever_averages_them():
    a = torch.log_softmax(torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), -1)
    b = torch.log_softmax(torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 1.0]]), -1)
    mean = averaged_log_probs([a, b])
    assert torch.allclose(mean.exp().sum(-1), torch.ones(2))  # a distribution again, not a bare average
    geometric = (a.exp() * b.exp()).sqrt()
    assert torch.allclose(mean.exp(), geometric / geometric.sum(-1, keepdim=True))
    assert mean[0].argmax() == 1 and torch.allclose(mean[1], a[1])  # b's surer vote wins; agreement stays as it was
    dev = DevReadings.mean([DevReadings({"": (a.numpy(), b.numpy())}, a.numpy()), DevReadings({"": (b.numpy(), b.numpy())}, b.numpy())])
    assert np.allclose(dev.meld[""][0], mean.numpy()) and np.allclose(dev.goemotions, mean.numpy())


RECIPE_CONFIG = json.loads((HERE / "config.json").read_text())


def test_a_batch_with_a_teacher_mixes_the_label_loss_and_the_distance_to_the_teacher_by_its_weight(tmp_path):
    cfg = finetune_config(RECIPE_CONFIG) | {"context_dropout": 0.0}
    torch.manual_seed(0)
    tokenizer, net = build_net(cfg)
    net.eval()  # no dropout: every call reads the same logits
    meld = read_text_corpus("meld", "train")[:3]
    units = [Unit(tuple(t.text for t in meld), tuple(t.speaker for t in meld), tuple(meld)),
             *pseudo_dialogues(read_text_corpus("isear", "train")[:2], 0.0, 8, random.Random(0))]
    taught = targets(units)
    torch.save({"weights": ["A"], "keys": [turn_key(t) for t in taught.turns],
                "emotion": torch.log_softmax(torch.randn(len(taught.turns), 7), -1),
                "sentiment": torch.log_softmax(torch.randn(len(taught.turns), 3), -1)}, tmp_path / "t.pt")
    table = TeacherTable(tmp_path / "t.pt")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        labels_only = batch_loss(net, tokenizer, units, cfg, gen)
        emo, sent = run_units(net, tokenizer, units, cfg["max_tokens"])
        distance = distill_loss(emo[taught.rows], sent[taught.rows], taught.turns, table, cfg)
        for weight in (0.0, 0.3, 1.0):
            mixed = batch_loss(net, tokenizer, units, cfg | {"teacher": {"weight": weight}}, gen, table)
            assert torch.allclose(mixed, (1 - weight) * labels_only + weight * distance, atol=1e-5)
    assert distance > 0 and labels_only > 0


from affect.text._network import TextAffectNet  # noqa: E402
from affect.text._weights_io import read_text_weights  # noqa: E402
from affect.text.weights import TextWeights  # noqa: E402
from recipes.text_multicorpus.finetune import start_from_shipped  # noqa: E402


def test_a_run_from_a_shipped_entry_starts_with_its_whole_network_and_neutral_calibration():
    cfg = finetune_config(RECIPE_CONFIG, "from_round1")
    _, net = build_net(cfg)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    start_from_shipped(net, cfg["init_weights"])
    shipped, _ = read_text_weights(TextWeights.resolve(cfg["init_weights"]).value.path)
    state = net.state_dict()
    learnt = [k for k in shipped if k not in TextAffectNet.CALIBRATION_BUFFERS]
    assert any(k.startswith("encoder.") for k in learnt) and any(k.startswith("emotion_head") for k in learnt)
    for name in learnt:
        assert torch.equal(state[name], shipped[name]), name
        assert not torch.equal(state[name], fresh[name]), name  # every stored tensor moved away from the packaged start
    for name in TextAffectNet.CALIBRATION_BUFFERS:
        assert torch.equal(state[name], fresh[name])  # refitted by final, never carried over


def test_mpnet_with_cached_lower_layers_reads_as_the_whole_network_and_trains_only_its_top():
    """mpnet_top's network: the lower layers run once per text and are kept; the output is the full
    MPNet's (a small random one here: the 420 MB base package is not on the test machine)."""
    from transformers import MPNetConfig, MPNetModel

    from recipes.text_multicorpus.mpnet_top import CachedLowerMPNet

    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=60, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=40)
    full = MPNetModel(config, add_pooling_layer=False).eval()
    full.encoder.relative_attention_bias.weight.data.normal_(0.0, 1.0)  # large enough that leaving it out shows
    cached = CachedLowerMPNet(MPNetModel(config, add_pooling_layer=False), frozen=3)
    cached.load_state_dict({f"top.0.{k}": v for k, v in full.encoder.layer[3].state_dict().items()})
    for mine, theirs in zip(cached._lower[1], full.encoder.layer[:3]):
        mine.load_state_dict(theirs.state_dict())
    cached._lower[0].load_state_dict(full.embeddings.state_dict())
    cached._lower[2].relative_attention_bias.load_state_dict(full.encoder.relative_attention_bias.state_dict())
    cached.eval()
    ids = torch.tensor([[0, 11, 12, 13, 14, 2], [0, 21, 2, 1, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        want = full(input_ids=ids, attention_mask=mask).last_hidden_state
        got = cached(input_ids=ids, attention_mask=mask).last_hidden_state
        again = cached(input_ids=ids[[1, 0]], attention_mask=mask[[1, 0]]).last_hidden_state[[1, 0]]
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=3e-3)  # the cache holds float16
    assert not torch.allclose(got[real], full.embeddings(input_ids=ids)[real], atol=2e-2)
    assert cached.cached_texts == 2 and torch.equal(again[real], got[real])  # read from the cache the second time
    assert set(cached.state_dict()) == {f"top.0.{k}" for k in full.encoder.layer[3].state_dict()}
    assert all(not p.requires_grad for part in cached._lower for p in part.parameters())


from recipes.text_multicorpus.finetune import dev_units, evaluate  # noqa: E402
from recipes.text_multicorpus.soup import average, greedy_soup, learnt_weights, line  # noqa: E402


def test_a_greedy_soup_keeps_the_best_ingredient_and_leaves_out_one_that_lowers_dev(tmp_path):
    cfg = finetune_config(RECIPE_CONFIG) | {"dev_per_corpus": 30, "smoke": True}
    torch.manual_seed(0)
    tokenizer, net = build_net(cfg)
    net.eval()
    start_from_shipped(net, "MINILM_MULTICORPUS_V7")
    good = learnt_weights(net)
    spoilt = {k: v + 0.5 * torch.randn_like(v) if v.is_floating_point() else v for k, v in good.items()}
    torch.save({"net": spoilt}, tmp_path / "spoilt.pt")
    dev = dev_units(cfg, None)
    soup, record = greedy_soup(net, tokenizer, dev, cfg, [str(tmp_path / "spoilt.pt"), "entry:MINILM_MULTICORPUS_V7"],
                               tmp_path / "soup.json")
    readings = record["ingredients"]
    assert readings["entry:MINILM_MULTICORPUS_V7"]["select"] > readings[str(tmp_path / "spoilt.pt")]["select"]
    assert record["kept"] == ["entry:MINILM_MULTICORPUS_V7"]  # tried best first, the spoilt one added and left out
    assert [s["added"] for s in record["steps"]] == [False]
    assert record["steps"][0]["metrics"]["select"] < readings["entry:MINILM_MULTICORPUS_V7"]["select"]
    assert all(torch.equal(soup[k], good[k]) for k in good)
    assert json.loads((tmp_path / "soup.json").read_text())["kept"] == record["kept"]
    halfway = average([good, spoilt])
    assert torch.allclose(halfway["emotion_head.weight"], (good["emotion_head.weight"] + spoilt["emotion_head.weight"]) / 2)


def test_a_line_reads_its_ends_as_the_two_networks_and_keeps_the_best_point(tmp_path):
    cfg = finetune_config(RECIPE_CONFIG) | {"dev_per_corpus": 30, "smoke": True}
    torch.manual_seed(0)
    tokenizer, net = build_net(cfg)
    net.eval()
    dev = dev_units(cfg, None)
    start_from_shipped(net, "MINILM_MULTICORPUS_V7")
    good = learnt_weights(net)
    shipped_reading = evaluate(net, tokenizer, dev, cfg)
    spoilt = {k: v + 0.5 * torch.randn_like(v) if v.is_floating_point() else v for k, v in good.items()}
    torch.save({"net": spoilt}, tmp_path / "spoilt.pt")
    best, record = line(net, tokenizer, dev, cfg, "entry:MINILM_MULTICORPUS_V7", str(tmp_path / "spoilt.pt"),
                        [0.0, 0.5, 1.0], tmp_path / "line.json")
    points = record["points"]
    assert points["0"] == shipped_reading  # a = 0 is the start itself
    assert points["1"]["select"] < points["0"]["select"]
    assert record["kept"] == ["a=0"] and all(torch.equal(best[k], good[k]) for k in good)
    net.load_state_dict(best, strict=False)
    assert evaluate(net, tokenizer, dev, cfg)["select"] == points["0"]["select"]


from recipes.text_multicorpus.prior_compare import CHAT_SHARES, STREAM_CHATS, chat_streams  # noqa: E402


def test_chat_streams_hold_real_traffics_shares_of_the_dev_chats_the_same_for_a_seed():
    """Each stream has the organisers' shares (88% others, 4% each emotion), drawn from the dev
    chats' own rows, in a shuffled order; the same seed draws the same streams."""
    gold = np.array([-1] * 500 + [1] * 150 + [2] * 150 + [3] * 150)
    streams = chat_streams(gold, [1, 2, 3], streams=3)
    assert len(streams) == 3 and all(len(s) == STREAM_CHATS for s in streams)
    for order in streams:
        assert np.mean(gold[order] == -1) == CHAT_SHARES["others"]
        assert all(np.mean(gold[order] == k) == CHAT_SHARES["each emotion"] for k in (1, 2, 3))
        assert not np.array_equal(gold[order], np.sort(gold[order]))  # not grouped by label
    again = chat_streams(gold, [1, 2, 3], streams=3)
    assert all(np.array_equal(a, b) for a, b in zip(streams, again))
    assert not np.array_equal(streams[0], streams[1])

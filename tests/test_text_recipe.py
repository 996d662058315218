"""The multi-corpus text recipe's pseudo-context: unrelated past turns for turns that have none."""

from __future__ import annotations

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

"""The speech recipe's per-corpus label sets: a corpus teaches nothing about the labels it lacks."""

from __future__ import annotations

import numpy as np
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
                  np.array(["train"] * n), np.zeros(n, int), np.arange(n), np.array(["wideband"] * n))
    sets = corpus_label_sets(items)
    assert sets["urdu"].nonzero().flatten().tolist() == [0, 1, 2]
    assert sets["emodb"].nonzero().flatten().tolist() == [0, 6]

"""Arithmetic on networks' weights (state dicts of one architecture), shared by the recipes that
average runs (``text_multicorpus/soup.py``) or walk the line between two (``face_fer/interpolate.py``).
Integer buffers (position ids, batch counts) are not weights: each result keeps the first network's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

StateDict = Mapping[str, torch.Tensor]


def _same_tensors(states: Sequence[StateDict]) -> None:
    if any(s.keys() != states[0].keys() for s in states[1:]):
        raise ValueError("the networks differ in their tensors")


def average(states: Sequence[StateDict]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the networks' float tensors (a uniform weight soup)."""
    _same_tensors(states)
    return {k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v for k, v in states[0].items()}


def interpolate(start: StateDict, end: StateDict, a: float) -> dict[str, torch.Tensor]:
    """``start + a * (end - start)`` for every float tensor: 0 is ``start``, 1 is ``end``."""
    _same_tensors([start, end])
    return {k: v + a * (end[k] - v) if v.is_floating_point() else v for k, v in start.items()}

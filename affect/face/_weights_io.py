"""Reading and writing the expression CNN as safetensors (architecture settings in the header)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file, safe_open, save_file

from affect._errors import ModelLoadError
from affect.face._network import FaceExpressionNet


def save_face_weights(net: FaceExpressionNet, path: Path, arch: Mapping[str, int | float]) -> None:
    """Write the network's state (float32) with ``arch`` (the constructor arguments) as metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"arch": json.dumps(dict(arch))})


def load_face_weights(path: Path) -> FaceExpressionNet:
    """The network, in eval mode, from a file written by :func:`save_face_weights`."""
    try:
        with safe_open(str(path), framework="pt") as f:
            arch = json.loads((f.metadata() or {})["arch"])
        net = FaceExpressionNet(**arch)
        net.load_state_dict(load_file(str(path)))
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load face weights {path}: {exc}") from exc
    return net.eval()

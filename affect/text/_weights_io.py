"""Saving and loading the text network's shipped weights: only what fine-tuning changed."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from affect._errors import ModelLoadError
from affect.text._network import TextAffectNet




def save_text_weights(net: TextAffectNet, path: Path, meta: dict, frozen: list[str] | None = None,
                      encoder_from: str | None = None, encoder_changed: tuple[str, ...] = ()) -> None:
    """Store what training changed in float16; frozen tensors come from the base package at load.

    ``frozen`` defaults to the parameters that do not require gradients. ``encoder_from`` (a
    file name beside ``path``) names shipped weights whose encoder this network reuses: then
    only the ``encoder.*`` tensors whose names start with one of ``encoder_changed`` (the layers
    trained further) are stored here, and loading takes the others from there.
    """
    from safetensors.torch import save_file

    if frozen is None:
        frozen = sorted(name for name, p in net.named_parameters() if not p.requires_grad)
    tensors = {}
    for name, tensor in net.state_dict().items():
        reused = encoder_from and name.startswith("encoder.") and not name.startswith(encoder_changed)
        if name in frozen or reused:
            continue
        tensor = tensor.detach().contiguous()
        keep_precision = name in TextAffectNet.CALIBRATION_BUFFERS or not tensor.is_floating_point()
        tensors[name] = tensor if keep_precision else tensor.half()
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "affect_meta": json.dumps(meta),
        "window": str(net.window),
        "dim": str(net.emotion_head.in_features),
        "frozen": json.dumps(frozen),
        **({"encoder_from": encoder_from} if encoder_from else {}),
    }
    save_file(tensors, str(path), metadata=header)


def read_text_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k).float() for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise ModelLoadError(f"cannot read text weights {path}: {exc}") from exc
    return tensors, header


def frozen_names(path: Path) -> list[str]:
    return json.loads(read_text_weights(path)[1].get("frozen", "[]"))


def load_text_net(path: Path, encoder: torch.nn.Module) -> tuple[TextAffectNet, dict]:
    """The fine-tuned network: the base ``encoder`` with the shipped tensors put over it."""
    tensors, header = read_text_weights(path)
    if header.get("encoder_from"):
        shared = Path(path).parent / header["encoder_from"]
        if Path(header["encoder_from"]).name != header["encoder_from"] or not shared.is_file():
            raise ModelLoadError(f"text weights {path} reuse the encoder of {header['encoder_from']!r}, which is not beside them")
        encoder_tensors, encoder_header = read_text_weights(shared)
        tensors = {k: v for k, v in encoder_tensors.items() if k.startswith("encoder.")} | tensors
        header = header | {"frozen": encoder_header.get("frozen", "[]")}
    net = TextAffectNet(encoder, dim=int(header["dim"]), window=int(header["window"]))
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    # Frozen tensors come from the base; files made before calibration keep its neutral defaults.
    missing = sorted(set(missing) - set(json.loads(header.get("frozen", "[]"))) - set(TextAffectNet.CALIBRATION_BUFFERS))
    if missing or unexpected:
        raise ModelLoadError(f"text weights {path} do not fit the network: missing {missing[:3]}, unexpected {unexpected[:3]}")
    net.eval()
    return net, json.loads(header.get("affect_meta", "{}"))

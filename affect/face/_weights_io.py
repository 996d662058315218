"""Reading and writing the expression CNN as safetensors (architecture settings in the header).

A file holds one network (what the recipe exports after each best epoch) or an ensemble of
several with the same architecture (``members.<i>.`` key prefixes, ``members`` in the header),
stored as float16 to halve the package: the loader widens it back to float32. A subset of an
ensemble's members can be loaded alone, so one file serves both the accurate and the fast model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from affect._errors import ModelLoadError
from affect.face._network import FaceExpressionEnsemble, FaceExpressionNet

if TYPE_CHECKING:
    from affect.face.weights import FaceWeights

FaceModel = FaceExpressionNet | FaceExpressionEnsemble


def load_face_entry(entry: FaceWeights) -> FaceModel:
    """A shipped ``FaceWeights`` entry's network(s), checked by its SHA-256, read as the entry reads them."""
    return load_face_weights(entry.value.verified_path(), members=entry.meta.get("members"))


def _state(net: torch.nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in net.state_dict().items()
    }


def _header(arch: Mapping[str, int | float], dtype: torch.dtype) -> dict[str, str]:
    return {"arch": json.dumps(dict(arch)), "dtype": str(dtype).removeprefix("torch.")}


def save_face_weights(
    net: FaceExpressionNet, path: Path, arch: Mapping[str, int | float], *, dtype: torch.dtype = torch.float32
) -> None:
    """Write the network's state with ``arch`` (the constructor arguments) as metadata.

    ``float16`` halves the file (a wider network stays under the package budget); the loader
    widens it back to float32.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_state(net, dtype), str(path), metadata=_header(arch, dtype))


def save_face_ensemble(
    members: Sequence[FaceExpressionNet], path: Path, arch: Mapping[str, int | float], *, dtype: torch.dtype = torch.float16
) -> None:
    """Write several networks of one architecture as one ensemble file (float16 by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ensemble = FaceExpressionEnsemble(list(members))
    save_file(
        _state(ensemble, dtype),
        str(path),
        metadata={**_header(arch, dtype), "members": str(len(members))},
    )


def face_weights_arch(path: Path) -> dict[str, int | float]:
    """The architecture settings a face weights file was written with (its header only)."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {})["arch"])


def load_face_weights(path: Path, members: Sequence[int] | None = None) -> FaceModel:
    """The network or ensemble, in eval mode and float32, from a file written above.

    ``members`` picks some networks of an ensemble file (one index gives a plain network);
    ``None`` loads the file whole.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        arch = json.loads(header["arch"])
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        net = _build(arch, state, int(header.get("members", 0)), members)
    except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ModelLoadError(f"cannot load face weights {path}: {exc}") from exc
    return net.eval()


def _build(arch: dict, state: dict[str, torch.Tensor], n_members: int, pick: Sequence[int] | None) -> FaceModel:
    if not n_members:
        if pick is not None and list(pick) != [0]:
            raise ValueError(f"members {list(pick)} asked of a single-network file")
        net = FaceExpressionNet(**arch)
        net.load_state_dict(state)
        return net
    pick = list(range(n_members)) if pick is None else list(pick)
    if not pick or any(not 0 <= i < n_members for i in pick):
        raise ValueError(f"members {pick} asked of an ensemble of {n_members}")
    nets = []
    for i in pick:
        prefix = f"members.{i}."
        net = FaceExpressionNet(**arch)
        net.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
        nets.append(net)
    return nets[0] if len(nets) == 1 else FaceExpressionEnsemble(nets)

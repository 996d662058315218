"""MTCNN (Zhang et al., 2016): three small cascaded networks that find faces and five landmarks.

The weights are the ones the PyPI package ``facenet-pytorch`` (MIT) ships, read once into
``affect/models/face/mtcnn.safetensors`` by ``recipes/face_detect/export_mtcnn.py``; the networks
and the cascade are written here, so neither that package nor torchvision is needed at run time.

The cascade: P-Net, fully convolutional, scores every 12x12 cell of an image pyramid (stride 2)
and regresses a box; R-Net re-scores each candidate at 24x24 and refines it; O-Net does the same
at 48x48 and places five landmarks (the eyes, the nose tip and the mouth corners). Between the
stages, overlapping boxes are suppressed and made square. Pictures here are gray: the three
colour channels of the first convolution of each network are summed into one, which gives the
same output as a gray picture repeated over three channels at a third of that layer's cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

import cv2
import numpy as np
import torch
from torch import nn

from affect._errors import ModelLoadError
from affect._weights import MODELS_DIR, _verify

SHIPPED_FILE = MODELS_DIR / "face" / "mtcnn.safetensors"
SHIPPED_SHA256 = "8a2ac2599a40ec2cda0641a2896e52bfbf104d2398e3eeba663626cdb5c38769"
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # as seen in the picture


def _flatten_transposed(x: torch.Tensor) -> torch.Tensor:
    """The dense layers were trained on feature maps flattened as (width, height, channel)."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(1, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), 1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = nn.Conv2d(1, 28, 3), nn.PReLU(28), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = nn.Conv2d(28, 48, 3), nn.PReLU(48), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_transposed(self.prelu3(self.conv3(x)))))
        return torch.softmax(self.dense5_1(x), 1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = nn.Conv2d(1, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3, self.pool3 = nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_transposed(self.prelu4(self.conv4(x)))))
        return torch.softmax(self.dense6_1(x), 1)[:, 1], self.dense6_2(x), self.dense6_3(x)


NETWORKS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def gray_first_layer(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A colour network's weights for gray input: the first convolution's channels summed."""
    return {k: v.sum(1, keepdim=True) if k == "conv1.weight" else v for k, v in state.items()}


def load_networks(path: Path | None = None) -> tuple[PNet, RNet, ONet]:
    """The three networks from the shipped file (keys ``<net>.<parameter>``), for gray input."""
    from safetensors.torch import load_file

    file = _verify(SHIPPED_FILE, SHIPPED_SHA256) if path is None else path
    tensors = load_file(str(file))
    nets = []
    for name, cls in NETWORKS.items():
        net = cls()
        state = gray_first_layer({k.split(".", 1)[1]: v.float() for k, v in tensors.items() if k.startswith(name + ".")})
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadError(f"MTCNN {name}: the weights do not fit the network: {exc}") from exc
        nets.append(net.eval())
    return tuple(nets)  # type: ignore[return-value]  # NETWORKS: P-, R- and O-Net, in that order


@dataclass(frozen=True)
class MtcnnFace:
    """One face: box corners in image pixels, O-Net's score, and the five landmarks ``(5, 2)`` as (x, y)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    landmarks: np.ndarray


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy suppression (overlap by union, or by the smaller box's area)."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = iw * ih
        denominator = np.minimum(areas[i], areas[rest]) if by_min else areas[i] + areas[rest] - inter
        order = rest[inter / np.maximum(denominator, 1e-9) <= threshold]
    return np.array(keep, int)


def _refine(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by the network's offsets (fractions of the box's width and height)."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square about its centre (side = its longer side)."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _normalised(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((pixels.astype(np.float32) - 127.5) / 128.0)


class Mtcnn:
    """Faces and five landmarks in a gray uint8 picture. One call at a time per instance (a lock).

    ``min_face``: the smallest face side looked for, in pixels (the pyramid starts where it
    fills P-Net's 12 pixels); ``thresholds``: each stage's minimum score; ``factor``: the
    pyramid's scale step. The defaults are the paper's.
    """

    CELL, STRIDE = 12, 2

    def __init__(self, *, min_face: float = 20.0, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, path: Path | None = None) -> None:
        self.pnet, self.rnet, self.onet = load_networks(path)
        self.min_face, self.thresholds, self.factor = min_face, thresholds, factor
        self._lock = Lock()

    def scales(self, h: int, w: int, min_face: float | None = None) -> list[float]:
        out, scale = [], self.CELL / (min_face or self.min_face)
        while min(h, w) * scale >= self.CELL:
            out.append(scale)
            scale *= self.factor
        return out

    @torch.inference_mode()
    def detect(self, gray: np.ndarray, min_face: float | None = None) -> list[MtcnnFace]:
        """Every face of a gray uint8 picture ``(H, W)``, best score first (``min_face``: this call's smallest face side)."""
        with self._lock:
            boxes = self._proposals(gray, min_face)
            if len(boxes):
                boxes = self._rescore(gray, boxes)
            return self._output(gray, boxes) if len(boxes) else []

    def _proposals(self, gray: np.ndarray, min_face: float | None) -> np.ndarray:
        h, w = gray.shape
        found = []
        for scale in self.scales(h, w, min_face):
            sh, sw = int(math.ceil(h * scale)), int(math.ceil(w * scale))
            level = cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA)
            prob, offsets = self.pnet(_normalised(level)[None, None])
            prob = prob[0].numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            corner = np.stack([xs, ys], 1).astype(np.float64) * self.STRIDE
            boxes = np.concatenate([(corner + 1) / scale, (corner + self.CELL) / scale], 1)
            scores = prob[ys, xs]
            reg = offsets[0].numpy()[:, ys, xs].T
            keep = _nms(boxes, scores, 0.5)
            found.append(np.concatenate([boxes[keep], scores[keep, None], reg[keep]], 1))
        if not found:
            return np.zeros((0, 5))
        every = np.concatenate(found)
        every = every[_nms(every[:, :4], every[:, 4], 0.7)]
        return np.concatenate([_square(_refine(every[:, :4], every[:, 5:9])), every[:, 4:5]], 1)

    def _crops(self, gray: np.ndarray, boxes: np.ndarray, side: int) -> torch.Tensor:
        """Each box cut from the picture (zeros outside it), resized to ``side`` pixels, normalised."""
        h, w = gray.shape
        out = np.zeros((len(boxes), 1, side, side), np.float32)
        for i, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(int)):
            bw, bh = max(x1 - x0, 1), max(y1 - y0, 1)
            patch = np.zeros((bh, bw), np.uint8)
            sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if sx1 > sx0 and sy1 > sy0:
                patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = gray[sy0:sy1, sx0:sx1]
            out[i, 0] = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
        return _normalised(out)

    def _rescore(self, gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        prob, offsets = self.rnet(self._crops(gray, boxes, 24))
        prob, offsets = prob.numpy(), offsets.numpy()
        keep = prob >= self.thresholds[1]
        boxes, prob, offsets = boxes[keep], prob[keep], offsets[keep]
        keep = _nms(boxes[:, :4], prob, 0.7)
        return np.concatenate([_square(_refine(boxes[keep, :4], offsets[keep])), prob[keep, None]], 1)

    def _output(self, gray: np.ndarray, boxes: np.ndarray) -> list[MtcnnFace]:
        prob, offsets, marks = (t.numpy() for t in self.onet(self._crops(gray, boxes, 48)))
        keep = prob >= self.thresholds[2]
        boxes, prob, offsets, marks = boxes[keep, :4], prob[keep], offsets[keep], marks[keep]
        size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
        landmarks = np.stack([boxes[:, None, 0] + marks[:, 0:5] * size[:, None, 0],
                              boxes[:, None, 1] + marks[:, 5:10] * size[:, None, 1]], -1)  # (K, 5, 2)
        refined = _refine(boxes, offsets)
        keep = _nms(refined, prob, 0.7, by_min=True)
        faces = []
        for i in keep:
            x0, y0, x1, y1 = map(float, refined[i])
            faces.append(MtcnnFace(x0, y0, x1, y1, float(prob[i]), landmarks[i]))
        return faces

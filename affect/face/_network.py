"""The expression CNN: a compact VGG-style network over 48x48 grayscale faces.

The network owns its input normalisation and its test-time crop, so whatever calls it only
has to hand over 48x48 gray faces scaled to [0, 1]: exactly what training saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

FACE_SIZE = 48  # side of the gray face the classifier reads (FER-2013 geometry)
CROP_SIZE = 40  # side of the centre crop the convolutions see (training uses random crops)
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FaceExpressionNet(nn.Module):
    """Conv stages at 40, 20, 10 and 5 pixels (1, 2, 3, 3 convs), global average pool, linear."""

    def __init__(self, num_classes: int = 7, width: int = 32, dropout: float = 0.4) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [*_conv(1, w), nn.MaxPool2d(2)]
        layers += [*_conv(w, 2 * w), *_conv(2 * w, 2 * w), nn.MaxPool2d(2)]
        layers += [*_conv(2 * w, 4 * w), *_conv(4 * w, 4 * w), *_conv(4 * w, 4 * w), nn.MaxPool2d(2)]
        layers += [*_conv(4 * w, 8 * w), *_conv(8 * w, 8 * w), *_conv(8 * w, 8 * w)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(8 * w, num_classes))

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        return (x - PIXEL_MEAN) / PIXEL_STD

    def forward_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Logits for already cropped, normalised faces ``(N, 1, 40, 40)`` (the training path)."""
        return self.head(self.features(crops))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Logits for gray faces ``(N, 1, 48, 48)`` in [0, 1]: normalise, centre-crop, classify."""
        return self.forward_crops(_centre_crop(self.normalise(faces), CROP_SIZE))

    def predict_proba(self, faces: torch.Tensor, flip: bool = True, crops: Sequence[int] = (CROP_SIZE,)) -> torch.Tensor:
        """Class probabilities for gray faces ``(N, 1, 48, 48)`` in [0, 1], averaged over test-time views.

        ``crops`` are the sides of centre crops to read (each resized to 40x40, as training's
        random crops of 36-45 pixels were); ``flip`` adds each crop's mirror image.
        """
        x = self.normalise(faces)
        views = [_centre_crop(x, side) for side in crops]
        if flip:
            views += [torch.flip(v, dims=[3]) for v in views]
        # All views in one pass: one larger batch is cheaper than several small ones.
        probs = torch.softmax(self.forward_crops(torch.cat(views)), dim=1)
        return probs.view(len(views), len(faces), -1).mean(0)


def _centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    if not 8 <= side <= FACE_SIZE:
        raise ValueError(f"crop side must be in [8, {FACE_SIZE}], got {side}")
    off = (FACE_SIZE - side) // 2
    crop = x[:, :, off : off + side, off : off + side]
    return crop if side == CROP_SIZE else F.interpolate(crop, size=(CROP_SIZE, CROP_SIZE), mode="bilinear", align_corners=False)


class FaceExpressionEnsemble(nn.Module):
    """Several independently trained networks; the probabilities are their mean.

    Networks trained apart (other seeds, augmentation draws and batch orders) make different
    mistakes on FER-2013's ambiguous faces, so their average is more accurate than any member.
    """

    def __init__(self, members: list[FaceExpressionNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def predict_proba(self, faces: torch.Tensor, flip: bool = True, crops: Sequence[int] = (CROP_SIZE,)) -> torch.Tensor:
        """Mean of the members' probabilities (each averaged over the same views) for gray faces ``(N, 1, 48, 48)``."""
        return torch.stack([m.predict_proba(faces, flip=flip, crops=crops) for m in self.members]).mean(0)

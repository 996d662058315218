"""The expression CNN: a compact VGG-style network over 48x48 grayscale faces.

The network owns its input normalisation and its test-time crop, so whatever calls it only
has to hand over 48x48 gray faces scaled to [0, 1]: exactly what training saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

FACE_SIZE = 48  # side of the gray face the classifier reads (FER-2013 geometry)
CROP_SIZE = 40  # side of the centre crop the convolutions see (training uses random crops)
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _separable(c_in: int, c_out: int) -> list[nn.Module]:
    """A 3x3 depthwise convolution then a 1x1 pointwise one: about a ninth of a full 3x3's cost."""
    return [nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), nn.ReLU(inplace=True),
            *_pointwise(c_in, c_out)]


def _pointwise(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FaceExpressionNet(nn.Module):
    """Conv stages at 40, 20, 10 and 5 pixels, global average pool, linear.

    ``depth`` is the number of convolutions per stage (``(1, 2, 3, 3)``, the VGG-style networks
    of face-vgg-fer@1-3, is the default); stage ``i`` has ``width * 2**i`` channels.
    ``separable`` makes every convolution after the first a depthwise-separable one (the cheap
    networks). The constructor arguments are the ``arch`` a weights file stores.
    """

    def __init__(
        self,
        num_classes: int = 7,
        width: int = 32,
        dropout: float = 0.4,
        depth: Sequence[int] = (1, 2, 3, 3),
        separable: bool = False,
    ) -> None:
        super().__init__()
        if len(depth) != 4 or min(depth) < 1:
            raise ValueError(f"depth must be four stage sizes >= 1, got {list(depth)}")
        block = _separable if separable else _conv
        layers: list[nn.Module] = []
        c_in = 1
        for stage, n_convs in enumerate(depth):
            c_out = width * 2**stage
            for i in range(n_convs):
                layers += (_conv if c_in == 1 else block)(c_in, c_out)
                c_in = c_out
            if stage < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes))

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        return (x - PIXEL_MEAN) / PIXEL_STD

    def forward_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Logits for already cropped, normalised faces ``(N, 1, 40, 40)`` (the training path)."""
        return self.head(self.features(crops))

    def crop_proba(self, crops: torch.Tensor) -> torch.Tensor:
        """Class probabilities (float32) for already cropped, normalised faces ``(N, 1, 40, 40)``."""
        return torch.softmax(self.forward_crops(crops).float(), dim=1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Logits for gray faces ``(N, 1, 48, 48)`` in [0, 1]: normalise, centre-crop, classify."""
        return self.forward_crops(_centre_crop(self.normalise(faces), CROP_SIZE))

    def predict_proba(self, faces: torch.Tensor, flip: bool = True, crops: Sequence[int] = (CROP_SIZE,)) -> torch.Tensor:
        """Class probabilities for gray faces ``(N, 1, 48, 48)`` in [0, 1], averaged over test-time views.

        ``crops`` are the sides of centre crops to read (each resized to 40x40, as training's
        random crops of 36-45 pixels were); ``flip`` adds each crop's mirror image.
        """
        return _mean_over_views(self.crop_proba, faces, flip, crops)


def _mean_over_views(crop_proba: Callable[[torch.Tensor], torch.Tensor], faces: torch.Tensor, flip: bool, crops: Sequence[int]) -> torch.Tensor:
    """``crop_proba`` of each test-time view of ``faces``, averaged over the views.

    All views go through in one pass: one larger batch is cheaper than several small ones.
    """
    x = FaceExpressionNet.normalise(faces)
    views = [_centre_crop(x, side) for side in crops]
    if flip:
        views += [torch.flip(v, dims=[3]) for v in views]
    return crop_proba(torch.cat(views)).view(len(views), len(faces), -1).mean(0)


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

    def crop_proba(self, crops: torch.Tensor) -> torch.Tensor:
        """Mean of the members' probabilities for already cropped, normalised faces ``(N, 1, 40, 40)``."""
        return torch.stack([m.crop_proba(crops) for m in self.members]).mean(0)  # type: ignore[operator]  # ModuleList items are typed Module

    def predict_proba(self, faces: torch.Tensor, flip: bool = True, crops: Sequence[int] = (CROP_SIZE,)) -> torch.Tensor:
        """Mean of the members' probabilities, averaged over test-time views, for gray faces ``(N, 1, 48, 48)``.

        The views are built once and each member reads all of them (``FaceExpressionNet.predict_proba``).
        """
        return _mean_over_views(self.crop_proba, faces, flip, crops)

"""Class-conditional DCGAN for 48x48 gray faces (Radford et al. 2016; projection discriminator,
Miyato & Koyama 2018).

The generator maps noise and an emotion to a face with strided transposed convolutions, batch
norm and ReLU, as DCGAN prescribes; the discriminator is the mirror image with spectral
normalisation (steadier than batch norm on two cores' small batches) and a projection of the
class embedding onto its features, so that it judges "a real *disgusted* face", not only "a face".
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from affect.labels import EMOTIONS

NUM_CLASSES = len(EMOTIONS)


class Generator(nn.Module):
    """``(z [B, latent], y [B])`` -> faces ``[B, 1, 48, 48]`` in [-1, 1]."""

    def __init__(self, latent: int = 100, embed: int = 32, width: int = 64) -> None:
        super().__init__()
        self.latent, self.width = latent, width
        self.embed = nn.Embedding(NUM_CLASSES, embed)
        self.stem = nn.Sequential(nn.Linear(latent + embed, 4 * width * 6 * 6, bias=False),
                                  nn.BatchNorm1d(4 * width * 6 * 6), nn.ReLU(True))

        def up(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))

        self.body = nn.Sequential(up(4 * width, 2 * width), up(2 * width, width),
                                  nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.stem(torch.cat([z, self.embed(y)], dim=1)).view(-1, 4 * self.width, 6, 6)
        return self.body(h)


class Discriminator(nn.Module):
    """``(faces, y)`` -> realness logits ``[B]``."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()

        def down(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, True))

        self.body = nn.Sequential(down(1, width), down(width, 2 * width), down(2 * width, 4 * width))  # 48 -> 6
        feat = 4 * width * 6 * 6
        self.out = spectral_norm(nn.Linear(feat, 1))
        self.project = spectral_norm(nn.Embedding(NUM_CLASSES, feat))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x).flatten(1)
        return self.out(h).squeeze(1) + (self.project(y) * h).sum(1)

"""The face recipe's weight interpolation (recipes/face_fer/interpolate.py) on the shipped networks."""

from __future__ import annotations

import torch

from affect.face._weights_io import face_weights_arch, load_face_weights
from affect.face.weights import FaceWeights
from recipes.face_fer.interpolate import interpolated


def test_the_ends_of_the_line_are_the_two_networks_and_its_middle_their_mean():
    fast = FaceWeights.VGG_FER_V3_FAST
    start = load_face_weights(fast.value.verified_path(), members=fast.meta.get("members"))
    end_path = FaceWeights.VGG_DISTILLED_FER_V4.value.verified_path()  # fine-tuned from network F
    end = load_face_weights(end_path)
    arch = face_weights_arch(end_path)
    faces = torch.rand(5, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, ref in ((0.0, start), (1.0, end)):
            assert torch.allclose(interpolated(start, end, a, arch)(faces), ref(faces), atol=1e-6)
        middle = interpolated(start, end, 0.5, arch)
        out = middle(faces)
        assert not torch.allclose(out, start(faces), atol=1e-3) and not torch.allclose(out, end(faces), atol=1e-3)
    s, e, m = start.state_dict(), end.state_dict(), middle.state_dict()
    for name in s:
        if s[name].is_floating_point():
            assert torch.allclose(m[name], (s[name] + e[name]) / 2, atol=1e-6), name  # batch-norm statistics too
        else:
            assert torch.equal(m[name], s[name]), name

"""Face weight files: a single network and an ensemble round-trip, and parts of an ensemble load alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affect._errors import ModelLoadError
from affect.datasets.face import read_fer2013_test
from affect.face._network import FaceExpressionEnsemble, FaceExpressionNet
from affect.face._weights_io import (
    load_face_entry,
    load_face_weights,
    save_face_ensemble,
    save_face_weights,
)
from affect.face.weights import FaceWeights

ARCH = {"width": 8, "dropout": 0.0}


def _net(seed: int) -> FaceExpressionNet:
    torch.manual_seed(seed)
    return FaceExpressionNet(**ARCH).eval()


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return torch.rand(5, 1, 48, 48, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def two_member_file(tmp_path: Path) -> tuple[FaceExpressionNet, FaceExpressionNet, Path]:
    a, b = _net(1), _net(2)
    path = tmp_path / "two.safetensors"
    save_face_ensemble([a, b], path, ARCH)
    return a, b, path


def test_single_network_round_trips_exactly(tmp_path: Path, faces: torch.Tensor):
    net = _net(1)
    save_face_weights(net, tmp_path / "one.safetensors", ARCH)
    loaded = load_face_weights(tmp_path / "one.safetensors")
    assert isinstance(loaded, FaceExpressionNet) and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded.predict_proba(faces), net.predict_proba(faces))


def test_a_float16_single_network_is_half_the_size_and_loads_as_float32(tmp_path: Path, faces: torch.Tensor):
    net = _net(3)
    save_face_weights(net, tmp_path / "f32.safetensors", ARCH)
    save_face_weights(net, tmp_path / "f16.safetensors", ARCH, dtype=torch.float16)
    ratio = (tmp_path / "f16.safetensors").stat().st_size / (tmp_path / "f32.safetensors").stat().st_size
    assert 0.45 < ratio < 0.6
    loaded = load_face_weights(tmp_path / "f16.safetensors")
    assert isinstance(loaded, FaceExpressionNet)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        got, expected = loaded.predict_proba(faces), net.predict_proba(faces)
    assert torch.allclose(got, expected, atol=2e-3) and not torch.equal(got, expected)  # rounded, not lost


def test_ensemble_is_the_mean_of_its_members_after_float16(two_member_file, faces: torch.Tensor):
    a, b, path = two_member_file
    loaded = load_face_weights(path)
    assert isinstance(loaded, FaceExpressionEnsemble) and len(loaded.members) == 2
    assert all(p.dtype == torch.float32 for p in loaded.parameters())  # widened back for CPU inference
    with torch.no_grad():
        expected = (a.predict_proba(faces) + b.predict_proba(faces)) / 2
        got = loaded.predict_proba(faces)
        assert torch.allclose(got, expected, atol=2e-3)
        assert not torch.allclose(a.predict_proba(faces), b.predict_proba(faces), atol=2e-3)  # the members differ


@pytest.mark.parametrize(("flip", "crops"), [(False, (40,)), (True, (36, 40, 44))])
def test_the_shipped_pair_reads_the_same_views_as_its_members(data_root, flip: bool, crops: tuple[int, ...]):
    slice_faces, _, _ = read_fer2013_test(data_root / "face" / "fer2013-test-slice", None, 21)
    faces = torch.from_numpy(slice_faces).float().div(255).unsqueeze(1)
    pair = load_face_entry(FaceWeights.VGG_FER_V3)
    assert isinstance(pair, FaceExpressionEnsemble) and len(pair.members) == 2
    with torch.no_grad():
        members = [m.predict_proba(faces, flip=flip, crops=crops) for m in pair.members]
        got = pair.predict_proba(faces, flip=flip, crops=crops)
        one_view = pair.predict_proba(faces, flip=False, crops=(40,))
    assert torch.allclose(got, (members[0] + members[1]) / 2, atol=1e-6)
    if flip:
        assert (got - one_view).abs().max() > 0.05  # the other views are read, not only the centre crop


def test_one_member_of_an_ensemble_loads_as_a_plain_network(two_member_file, faces: torch.Tensor):
    _, b, path = two_member_file
    second = load_face_weights(path, members=[1])
    assert isinstance(second, FaceExpressionNet)
    with torch.no_grad():
        assert torch.allclose(second.predict_proba(faces), b.predict_proba(faces), atol=2e-3)


@pytest.mark.parametrize("members", [[2], [], [-1]])
def test_missing_members_are_refused(two_member_file, members: list[int]):
    path = two_member_file[2]
    with pytest.raises(ModelLoadError, match="members"):
        load_face_weights(path, members=members)


def test_a_file_that_is_not_weights_is_refused(tmp_path: Path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="cannot load face weights"):
        load_face_weights(path)


@pytest.mark.parametrize("arch", [{"width": 8, "depth": [1, 1, 2, 2]}, {"width": 8, "separable": True}])
def test_shallower_and_separable_networks_round_trip_with_their_arch(tmp_path: Path, faces: torch.Tensor, arch: dict):
    torch.manual_seed(4)
    net = FaceExpressionNet(**arch).eval()
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in _net(4).parameters())
    save_face_weights(net, tmp_path / "arch.safetensors", arch)
    loaded = load_face_weights(tmp_path / "arch.safetensors")
    with torch.no_grad():
        assert torch.equal(loaded.predict_proba(faces), net.predict_proba(faces))


def test_a_bad_depth_is_refused():
    with pytest.raises(ValueError, match="depth"):
        FaceExpressionNet(depth=(1, 2, 3))

"""The face recipe's weight-space tools: the line between two networks (interpolate.py) and a run's
last averaged network (distill.py --export-last)."""

from __future__ import annotations

import json

import pytest
import torch

from affect.face._weights_io import face_weights_arch, load_face_weights
from affect.face.weights import FaceWeights
from recipes.face_fer.distill import HERE, _averaged, build_student, export_last
from recipes.face_fer.interpolate import interpolated, line_start


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


def test_a_line_starts_at_a_shipped_entry_by_name_or_at_a_weights_file(tmp_path):
    entry = FaceWeights.VGG_DISTILLED_FER_V4
    by_name, name_id = line_start(entry.name)
    by_file, file_id = line_start(str(entry.value.verified_path()))
    faces = torch.rand(3, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(by_name.eval()(faces), by_file.eval()(faces))
    assert name_id == entry.value.id and file_id.endswith(".safetensors")
    with pytest.raises(SystemExit, match="neither a FaceWeights name nor a weights file"):
        line_start(str(tmp_path / "missing.safetensors"))


def test_the_last_epochs_averaged_network_is_what_export_last_writes(tmp_path):
    cfg = json.loads((HERE / "config_distill_l.json").read_text())
    torch.manual_seed(0)
    net, _ = build_student(cfg)
    ema = _averaged(net, cfg)
    ema.update_parameters(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    ema.update_parameters(net)  # now the average is not the network
    torch.save({"ema": ema.state_dict(), "epoch": 2}, tmp_path / "last.pt")
    export_last(cfg, tmp_path / "last.pt", tmp_path / "last.safetensors")
    exported = load_face_weights(tmp_path / "last.safetensors").eval()
    faces = torch.rand(4, 1, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, raw, got = ema.module.eval()(faces), net.eval()(faces), exported(faces)
    assert torch.allclose(got, want, atol=2e-2)  # float16 weights
    assert not torch.allclose(got, raw, atol=2e-2)

"""The face recipe's weight-space tools: the line between two networks (interpolate.py) and a run's
last averaged network (distill.py --export-last); the distillation's targets and its teacher read on
the student's own crops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from affect.datasets.face import read_fer2013_test
from affect.face._network import CROP_SIZE, FaceExpressionNet, _centre_crop
from affect.face._weights_io import face_weights_arch, load_face_entry, load_face_weights
from affect.face.weights import FaceWeights
from recipes.face_fer.distill import (HERE, OnlineTeacher, _averaged, augment_wide, build_student, export_last,
                                      fixed_targets, teacher_reads)
from recipes.face_fer.interpolate import interpolated, line_start


def test_the_ends_of_the_line_are_the_two_networks_and_its_middle_their_mean():
    fast = FaceWeights.VGG_FER_V3_FAST
    start = load_face_entry(fast)
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


def test_the_online_teacher_reads_a_crop_as_the_pair_reads_that_face_in_one_view(data_root):
    slice_faces, _, _ = read_fer2013_test(data_root / "face" / "fer2013-test-slice", None, 21)
    faces = torch.from_numpy(slice_faces).float().div(255).unsqueeze(1)
    teacher = OnlineTeacher("VGG_FER_V3", use_bf16=False)
    centre = _centre_crop(FaceExpressionNet.normalise(faces), CROP_SIZE)
    with torch.no_grad():
        want = teacher.net.predict_proba(faces, flip=False)
    got = teacher(centre.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got.sum(1), torch.ones(len(faces)), atol=1e-5)
    # what it is for: the crop the student is shown, not the clean face, is what the teacher reads
    shown = augment_wide(faces, json.loads((HERE / "config_distill_m.json").read_text())["aug"],
                         torch.Generator().manual_seed(3))
    assert (teacher(shown) - want).abs().max() > 0.05


def test_an_online_teachers_share_is_left_out_of_the_fixed_targets_and_added_per_batch():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 20)
    votes = rng.dirichlet(np.ones(7), 20).astype(np.float32)
    teacher = rng.dirichlet(np.ones(7), 20).astype(np.float32)
    mix = {"label": 0.3, "votes": 0.1, "teacher": 0.6}
    clean, share = fixed_targets(labels, votes, teacher, mix, online=False)
    onehot = np.eye(7, dtype=np.float32)[labels]
    assert share == pytest.approx(0.6)
    np.testing.assert_allclose(clean, 0.3 * onehot + 0.1 * votes + 0.6 * teacher, atol=1e-6)
    online, share = fixed_targets(labels, votes, teacher, mix, online=True)
    np.testing.assert_allclose(online.sum(1), 0.4, atol=1e-6)
    np.testing.assert_allclose(online + share * teacher, clean, atol=1e-6)  # the same target where the views agree


def test_the_teacher_reads_clean_faces_unless_told_and_nothing_else():
    assert teacher_reads({}) == "clean"
    assert teacher_reads(json.loads((HERE / "config_distill_m.json").read_text())) == "augmented"
    with pytest.raises(ValueError, match="teacher_reads"):
        teacher_reads({"teacher_reads": "mirrored"})

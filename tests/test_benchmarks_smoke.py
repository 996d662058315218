"""Seconds-long smoke runs of the benchmark commands: they run and write their reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_accuracy_text_smoke(tmp_path: Path):
    out = run("-m", "benchmarks.accuracy", "text", "--limit", "60", "--no-progress", "--json", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "t.json").read_text())
    assert set(report["metrics"]) >= {"meld_test_weighted_f1", "meld_test_weighted_f1_no_context", "meld_test_accuracy",
                                      "meld_test_sentiment_macro_f1", "vader_meld_test_sentiment_macro_f1",
                                      "goemotions_ekman_test_macro_f1"}
    assert all(0 <= v <= 1 for v in report["metrics"].values())
    assert (tmp_path / "t.md").is_file() and (tmp_path / "text-meld-test-confusion.png").stat().st_size > 1000


def test_load_smoke(tmp_path: Path):
    out = run("-m", "benchmarks.load", "--conversations", "2", "--seconds", "2", "--mix", "text", "--json", str(tmp_path / "l.json"),
              "--variant", "--batch-concurrency 2", env={"AFFECT_SPEECH_MODEL": "none", "AFFECT_FACE_MODEL": "none"})
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "l.json").read_text())
    metrics = report["metrics"]
    assert metrics["turns_per_s_2"] > 0 and metrics["baseline_turns_per_s_2"] > 0 and metrics["errors_2"] == 0
    # the variant (the shipped server with extra flags) ran in the same run and is set beside it
    assert metrics["variant1_turns_per_s_2"] > 0
    assert metrics["variant1_throughput_ratio_2"] == pytest.approx(metrics["variant1_turns_per_s_2"] / metrics["turns_per_s_2"])
    assert any("--batch-concurrency 2" in name for name in report["tables"])
    assert [Path(p).name for p in report["plots"]] == ["l.png"] and (tmp_path / "l.png").stat().st_size > 0
    # the servers' CPU is read from /proc: some per turn, and never more cores than the machine has
    for prefix in ("", "baseline_", "variant1_"):
        assert metrics[f"{prefix}server_cpu_ms_per_turn_2"] > 0
        assert 0 < metrics[f"{prefix}server_cores_2"] <= os.cpu_count() + 0.1


def test_soak_leaves_no_conversation_state(tmp_path: Path):
    out = run("-m", "benchmarks.load", "--soak-turns", "160", "--json", str(tmp_path / "soak.json"),
              env={"AFFECT_SPEECH_MODEL": "none", "AFFECT_FACE_MODEL": "none"})
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "soak.json").read_text())["metrics"]
    assert metrics["soak_turns"] >= 160
    assert metrics["soak_conversation_states_last"] == 0 and metrics["soak_open_streams_last"] == 0


def test_speed_smoke(tmp_path: Path):
    out = run("-m", "benchmarks.speed", "--batch-sizes", "1,2", "--repeats", "1", "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "s.json").read_text())["metrics"]
    assert metrics["matmul_gflops"] > 0
    host = json.loads((tmp_path / "s.json").read_text())["host_during_run"]  # a timing report says what the host took
    assert 0 <= host["cpu_steal_share"] <= 1 and 0 <= host["cpu_others_share"] <= 1 and len(host["load_average"]) == 3
    for encoder in ("text", "face", "speech"):
        assert metrics[f"{encoder}_gflop_per_item"] > 0 and metrics[f"{encoder}_items_per_s_2"] > 0
        assert 0 < metrics[f"{encoder}_peak_fraction"] < 5


def test_profile_smoke(tmp_path: Path):
    """py-spy samples a few turns of the batch path; every sample lands in one stage."""
    out = run("-m", "benchmarks.profile", "--batch", "3", "--rounds", "1", "--json", str(tmp_path / "p.json"))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "p.json").read_text())
    rows = report["tables"]["Samples by stage (py-spy, innermost frame in a stage's module)"]["rows"]
    assert report["metrics"]["samples"] > 0 and report["metrics"]["turns"] == 3
    assert sum(n for _, n, _ in rows) == report["metrics"]["samples"]
    assert report["metrics"]["share_face_blazeface_detection"] > 0  # a third of the turns carry a frame


def test_face_frames_smoke(tmp_path: Path):
    """Both ways read the same moving-face frames; the focused search reads fewer detector windows."""
    out = run("-m", "benchmarks.face_frames", "--faces", "3", "--frames", "6", "--every", "3", "--out-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "face-frames.json").read_text())["metrics"]
    assert metrics["focused_windows_per_frame"] < metrics["full_windows_per_frame"]
    assert 0 <= metrics["focused_found_share"] <= 1 and 0 <= metrics["same_top_emotion_share"] <= 1
    assert (tmp_path / "face-frames.md").is_file()


def test_accuracy_text_everyday_dialogue_smoke(tmp_path: Path):
    from affect.text.prior import PRIOR_PRESETS
    from affect.text.weights import TextWeights
    from tests._dailydialog import write_dailydialog

    write_dailydialog(tmp_path / "full")
    out = run("-m", "benchmarks.accuracy", "text", "--everyday-dialogue", "--full-data", str(tmp_path / "full"), "--no-progress",
              "--json", str(tmp_path / "d.json"))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "d.json").read_text())
    metrics = report["metrics"]
    entries = [("default" if w is TextWeights.DEFAULT else w.name.lower()) for w in TextWeights]
    for entry in entries:
        for reading in ("", "_alone"):
            assert 0 <= metrics[f"dailydialog_{entry}_micro_f1_emotions{reading}"] <= 1
            assert 0 <= metrics[f"dailydialog_{entry}_share_neutral{reading}"] <= 1
    assert metrics["dailydialog_true_share_neutral"] == 4 / 11
    assert metrics["dailydialog_always_neutral_micro_f1_emotions"] == 0 and metrics["dailydialog_always_neutral_share_neutral"] == 1
    # a prior with more neutral than the training mix reads more turns as neutral, never fewer
    assert metrics["dailydialog_default_share_neutral_prior_conversational"] >= metrics["dailydialog_default_share_neutral_prior_trained"]
    assert len(report["tables"]["The default under each prior preset (with past turns)"]["rows"]) == len(PRIOR_PRESETS)
    assert (tmp_path / "text-dailydialog-confusion.png").stat().st_size > 1000


def test_accuracy_speech_unheard_voices_smoke(tmp_path: Path, data_root: Path):
    """TESS-shaped folders of real speech (RAVDESS test-slice clips written as WAV), one of them an
    AIFF file named .wav as TESS has: read by every entry, the refused file named and left out."""
    import soundfile as sf

    from affect.datasets.ravdess import read_test_slice

    clips = read_test_slice(data_root)
    folders = {"angry": "anger", "happy": "happiness", "sad": "sadness", "neutral": "neutral"}
    for speaker, offset in (("OAF", 0), ("YAF", 1)):
        for folder, emotion in folders.items():
            clip = [c for c in clips if c.emotion.value == emotion][offset]
            samples, rate = sf.read(clip.path)
            (tmp_path / "full" / "tess" / f"{speaker}_{folder}").mkdir(parents=True)
            sf.write(tmp_path / "full" / "tess" / f"{speaker}_{folder}" / f"{speaker}_word_{folder}.wav", samples, rate)
    sf.write(tmp_path / "full" / "tess" / "YAF_sad" / "YAF_germ_sad.wav", samples, rate, format="AIFF")
    out = run("-m", "benchmarks.accuracy", "speech", "--unheard-voices", "--full-data", str(tmp_path / "full"), "--no-progress",
              "--json", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "s.json").read_text())
    metrics = report["metrics"]
    assert metrics["tess_clips"] == 8 and metrics["tess_refused_files"] == 1
    assert any("YAF_germ_sad.wav" in note and "AIFF" in note for note in report["notes"])
    for tag in ("default", "whisper_tiny_layers_multicorpus_v10", "whisper_tiny_ravdess_v1"):
        for reading in ("", "_telephone"):
            assert 0 <= metrics[f"tess_{tag}{reading}_uar"] <= 1
            assert 0 < metrics[f"max_predicted_share_tess_{tag}{reading}"] <= 1
            assert metrics[f"tess_{tag}{reading}_no_speech"] == 0  # real speech, clean or through a phone line, is heard
    assert (tmp_path / "speech-tess-confusion.png").stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (["text", "--limit", "5"], "give --json or --out-dir"),  # a part run replaced the committed report
    (["all", "--json", "all.json"], "one report per task"),  # all wrote the committed reports, --json unread
    (["text", "--limit", "0", "--json", "t.json"], "at least 1"),  # 0 ran the whole test set
    (["text", "--data-root", "empty", "--json", "t.json"], "build_datasets.sh"),  # a traceback
    # CK+ and FER+ missing from --full-data were bare FileNotFoundErrors, which are no longer data
    (["face", "--cross-corpus", "--full-data", "empty", "--json", "t.json"], "CK+48 not found at"),
    (["face", "--full-data", "fer-only", "--limit", "2", "--json", "t.json"], "FER+ labels not found at"),
])
def test_accuracy_refuses_in_one_message_what_would_mislead_or_crash(tmp_path: Path, data_root: Path, args: list[str],
                                                                     message: str):
    (tmp_path / "empty").mkdir()
    (tmp_path / "fer-only" / "fer2013" / "archive").mkdir(parents=True)  # FER-2013's test faces, FER+ not built
    (tmp_path / "fer-only" / "fer2013" / "archive" / "test").symlink_to(data_root / "face" / "fer2013-test-slice")
    args = [str(tmp_path / a) if a in ("all.json", "t.json", "empty", "fer-only") else a for a in args]
    out = run("-m", "benchmarks.accuracy", *args, "--no-progress")
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not list(tmp_path.glob("*.json"))


def test_a_missing_file_that_is_not_data_is_named_without_the_data_hint(tmp_path: Path):
    """A weights file the user named ($AFFECT_FER_MODEL, the face benchmark's baseline) was reported
    as missing data, pointing at --data-root, --full-data and build_datasets.sh."""
    missing = tmp_path / "emotion_model.hdf5"
    out = run("-m", "benchmarks.accuracy", "face", "--limit", "2", "--no-progress", "--json", str(tmp_path / "f.json"),
              env={"AFFECT_FER_MODEL": str(missing)})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"accuracy face: AFFECT_FER_MODEL={missing}: no such file" in out.stderr, out.stderr
    assert "build_datasets.sh" not in out.stderr and "--data-root" not in out.stderr
    assert not list(tmp_path.glob("f.*"))


@pytest.mark.parametrize("args, message", [
    (["benchmarks.speed", "--encoders", "txt"], "'txt' is not one of"),  # a KeyError after the first measurement
    (["benchmarks.speed", "--runtimes", "tensorrt"], "'tensorrt' is not one of"),  # silently measured nothing
    (["benchmarks.speed", "--batch-sizes", "a,b"], "not a whole number"),
    (["benchmarks.load", "--mix", "foo"], "'foo' is not one of"),  # ran both servers, then crashed in its plot
    (["benchmarks.load", "--conversations", "x"], "not a whole number"),
    (["benchmarks.speed", "--repeats", "0"], "at least 1"),  # reported infinite milliseconds
    (["benchmarks.face_frames", "--faces", "0"], "at least 1"),  # a ZeroDivisionError
    (["benchmarks.face_frames", "--every", "0"], "at least 1"),  # 'a full search once in 0 frames'
    (["benchmarks.profile", "--batch", "0"], "at least 1"),  # the profiled child's ValueError
    (["benchmarks.detection", "--limit", "0"], "at least 1"),  # ran every face
    (["benchmarks.load", "--soak-turns", "-5"], "at least 1"),  # an IndexError after a server started
    (["benchmarks.load", "--seconds", "0"], "above 0"),  # levels of no turns
])
def test_a_bad_option_value_is_one_usage_line_before_any_work(args: list[str], message: str):
    out = run("-m", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("command", ["benchmarks.speed", "benchmarks.load", "benchmarks.detection", "benchmarks.face_frames",
                                     "benchmarks.profile"])
def test_missing_data_is_one_message_naming_it_and_where_it_comes_from(tmp_path: Path, command: str):
    """As benchmarks.accuracy does: each of these ended in a traceback (an IndexError, a ValueError
    of an empty stack, the profiled child's own) when --data-root held no test data."""
    (tmp_path / "empty").mkdir()
    out = run("-m", command, "--data-root", str(tmp_path / "empty"), "--json", str(tmp_path / "r.json"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"{command}: " in out.stderr and "not found at " + str(tmp_path / "empty") in out.stderr, out.stderr
    assert "build_datasets.sh" in out.stderr and not list(tmp_path.glob("r.*"))


def test_load_sends_a_clip_that_a_partial_slice_has(tmp_path: Path, data_root: Path):
    """benchmarks.load took the 41st clip of actor 24: a slice with fewer clips raised IndexError."""
    from affect.datasets import DatasetNotFoundError
    from benchmarks.load import payload_sources

    (tmp_path / "face").symlink_to(data_root / "face")
    actor = tmp_path / "speech" / "ravdess-test-slice" / "Actor_24"
    actor.mkdir(parents=True)
    kept = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[:5]
    for clip in kept:
        (actor / clip.name).symlink_to(clip)
    audio, faces = payload_sources(tmp_path)
    assert audio.name in {clip.name for clip in kept} and audio.is_file() and len(faces) > 0
    for clip in kept:
        (actor / clip.name).unlink()
    with pytest.raises(DatasetNotFoundError, match="no RAVDESS speech clips"):  # the data message, not an IndexError
        payload_sources(tmp_path)


def test_load_without_an_angry_face_is_missing_data(tmp_path: Path, data_root: Path):
    """A face slice with no angry face ended in 'no test face was detected', which is not what was missing."""
    from affect.datasets import DatasetNotFoundError
    from benchmarks.load import payload_sources

    (tmp_path / "speech").symlink_to(data_root / "speech")
    (tmp_path / "face" / "fer2013-test-slice").mkdir(parents=True)
    (tmp_path / "face" / "fer2013-test-slice" / "happy").symlink_to(data_root / "face" / "fer2013-test-slice" / "happy")
    with pytest.raises(DatasetNotFoundError, match="no angry FER-2013 test face"):
        payload_sources(tmp_path)


def test_load_sends_the_committed_reports_clip_when_the_slice_has_it(data_root: Path):
    from benchmarks.load import PAYLOAD_CLIP, payload_sources

    assert payload_sources(data_root)[0].stem == PAYLOAD_CLIP


@pytest.mark.parametrize("present, missing", [("text", "FER-2013 test faces not found at"),
                                              ("text,face", "RAVDESS speech not found at")])
def test_speed_finds_missing_data_before_timing_anything(tmp_path: Path, data_root: Path, present: str, missing: str):
    """It found the faces or clips missing only after timing text (minutes of a full run)."""
    for modality in present.split(","):
        (tmp_path / "data" / modality).parent.mkdir(exist_ok=True)
        (tmp_path / "data" / modality).symlink_to(data_root / modality)
    out = run("-m", "benchmarks.speed", "--data-root", str(tmp_path / "data"), "--batch-sizes", "1", "--repeats", "1",
              "--runtimes", "torch", "--encoders", "text,face,speech", "--json", str(tmp_path / "s.json"))
    assert out.returncode == 2 and missing in out.stderr and "build_datasets.sh" in out.stderr, out.stderr
    assert "GFLOP" not in out.stderr and "Traceback" not in out.stderr, out.stderr  # neither the matmul peak nor text timed
    assert not list(tmp_path.glob("s.*"))


def test_speed_counts_flops_on_as_many_items_as_it_divides_by(tmp_path: Path, data_root: Path):
    """With batch sizes below 16 the FLOPs of the few items read were divided by 16."""
    from affect.datasets.face import read_fer2013_test
    from affect.face import FaceEncoder
    from benchmarks.speed import counted_flops, main

    assert main(["--encoders", "face", "--batch-sizes", "1", "--repeats", "1", "--runtimes", "torch",
                 "--json", str(tmp_path / "s.json")]) == 0
    metrics = json.loads((tmp_path / "s.json").read_text())["metrics"]
    face = read_fer2013_test(data_root / "face" / "fer2013-test-slice", None, None)[0][:1]
    assert metrics["face_gflop_per_item"] * 1e9 == pytest.approx(counted_flops(lambda: FaceEncoder().predict_proba(face)))


def test_speed_refuses_a_batch_larger_than_its_test_inputs(tmp_path: Path, data_root: Path):
    """A batch of 4 over a slice of 3 clips timed 3 clips and reported them as 4."""
    actor = tmp_path / "speech" / "ravdess-test-slice" / "Actor_24"
    actor.mkdir(parents=True)
    for clip in sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[:3]:
        (actor / clip.name).symlink_to(clip)
    out = run("-m", "benchmarks.speed", "--data-root", str(tmp_path), "--encoders", "speech", "--batch-sizes", "1,4",
              "--repeats", "1", "--runtimes", "torch", "--json", str(tmp_path / "s.json"))
    assert out.returncode == 2 and "the speech test inputs under" in out.stderr and "only 3" in out.stderr, out.stderr
    assert not list(tmp_path.glob("s.*"))


@pytest.mark.parametrize("args, report", [
    (["benchmarks.speed", "--encoders", "forecast", "--repeats", "1"], "speed"),
    (["benchmarks.load", "--soak-turns", "16"], "load-soak"),
    (["benchmarks.load", "--chaos", "--seconds", "1"], "load-chaos"),
    (["benchmarks.detection", "--limit", "5", "--empty", "1"], "detection"),
    (["benchmarks.face_frames", "--faces", "1", "--frames", "2"], "face-frames"),
    (["benchmarks.profile", "--batch", "1", "--rounds", "1"], "profile"),
])
def test_a_run_other_than_the_committed_one_must_name_its_output(args: list[str], report: str):
    """As benchmarks.accuracy's --limit: these runs replaced the committed report of the full run."""
    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / f"{report}.json"
    before = committed.read_bytes()
    out = run("-m", *args)
    assert out.returncode == 2 and "give --json or --out-dir" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert committed.read_bytes() == before


@pytest.mark.parametrize("args, env, report", [
    (["benchmarks.load", "--soak-turns", "12000"], {"AFFECT_RUNTIME": "torch"}, "load-soak"),  # the servers' runtime
    (["benchmarks.load"], {"AFFECT_SPEECH_MODEL": "none"}, "load"),  # their weights
    (["benchmarks.load"], {"AFFECT_MODEL_THREADS": "2"}, "load"),  # their threads
    (["benchmarks.accuracy", "face", "--no-progress"], {"AFFECT_FER_MODEL": "emotion_model.hdf5"}, "accuracy-face"),
    (["benchmarks.speed"], {}, "speed"),  # $AFFECT_DATA_ROOT alone: other data
])
def test_affect_variables_that_change_the_measure_make_another_run(tmp_path: Path, args: list[str], env: dict,
                                                                    report: str):
    """The committed-run rule read the options only: these variables changed what was measured and
    replaced the committed report. $AFFECT_DATA_ROOT names an empty folder in every case, so that
    a run the rule lets through ends at once (missing data) instead of measuring."""
    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / f"{report}.json"
    before = committed.read_bytes()
    (tmp_path / "empty").mkdir()
    out = run("-m", *args, env={**env, "AFFECT_DATA_ROOT": str(tmp_path / "empty")})
    assert out.returncode == 2 and "give --json or --out-dir" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert all(name in out.stderr for name in [*env, "AFFECT_DATA_ROOT"]), out.stderr
    assert committed.read_bytes() == before


def test_another_data_root_makes_another_run(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    out = run("-m", "benchmarks.detection", "--data-root", str(tmp_path / "empty"))
    assert out.returncode == 2 and "--data-root differ" in out.stderr and "give --json or --out-dir" in out.stderr, out.stderr


def test_accuracy_fusion_runs_on_the_smallest_limit(tmp_path: Path):
    """--limit 5 crashed (numpy: 'a cannot be empty'): the first 5 RAVDESS clips are all neutral and
    shared no emotion with 5 faces and the first MELD dialogue, so no combination could be matched.
    A limited run is computed, not cached (its few items went into recipes/fusion/cache)."""
    from recipes.fusion.predictions import CACHE

    cached_before = sorted(CACHE.glob("*")) if CACHE.is_dir() else []
    out = run("-m", "benchmarks.accuracy", "fusion", "--limit", "1", "--no-progress", "--out-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "accuracy-fusion.json").read_text())["metrics"]
    assert 0 <= metrics["fusion_accuracy_face+speech+text"] <= 1
    assert (sorted(CACHE.glob("*")) if CACHE.is_dir() else []) == cached_before

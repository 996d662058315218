"""Speed: each encoder's latency and throughput across batch sizes, against the machine's peak.

    python -m benchmarks.speed [--batch-sizes 1,2,4,8,16,32,64] [--repeats 5] [--json FILE | --out-dir DIR]

For every encoder and batch size: milliseconds per batch and per item, items per second. Beside
them, the encoder's floating-point operations per item (counted by torch's FlopCounterMode on a
real forward pass; for the Whisper encoder, which runs in ctranslate2, computed from its shape)
and the machine's float32 matmul rate measured in the same run, so the report says what
fraction of the machine's peak each encoder reaches. Items are real test inputs: MELD test
turns, FER-2013 test-slice faces, RAVDESS test-slice clips.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from affect.datasets import default_data_root, read_meld
from affect.datasets.face import read_fer2013_test
from affect.datasets.ravdess import read_test_slice
from benchmarks._args import names_of, positive_int, positive_ints
from benchmarks._data import missing_data_exits
from benchmarks._output import add_output_options, committed_run, report_json
from benchmarks._report import Report, publish

WHISPER_TINY = {"layers": 4, "width": 384, "frames_per_second": 50}
FLOP_BATCH = 16  # the items an encoder's FLOPs are counted on (text's padding included), whatever the batch sizes


def matmul_flops_per_second(n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def counted_flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def whisper_encoder_flops(seconds: float, layers: int = WHISPER_TINY["layers"]) -> float:
    """Multiply-adds x 2 of Whisper tiny's encoder, run through ``layers`` of its layers, on ``seconds``
    of audio (convolutions, attention, MLP)."""
    t, d = seconds * WHISPER_TINY["frames_per_second"], WHISPER_TINY["width"]
    convs = 2 * (2 * t * 80 * d * 3) + 2 * (t * d * d * 3)  # conv1 at 2T frames, conv2 strided to T
    per_layer = 2 * t * (4 * d * d + 8 * d * d) + 2 * 2 * t * t * d
    return convs + layers * per_layer


@dataclass
class Bench:
    """One encoder ready to time: ``run(batch)`` calls it on the first ``batch`` items; ``attrs``
    name the attributes a runtime replaces (``affect.onnx.use_runtime``), dotted."""

    encoder: object
    attrs: tuple[str, ...]
    flops: float
    run: Callable[[int], object]


def text_inputs(n: int, data_root: Path) -> list[str]:
    """The first ``n`` MELD test turns."""
    return [t.text for d in read_meld("test", data_root) for t in d][:n]


def face_inputs(n: int, data_root: Path) -> np.ndarray:
    """The first ``n`` FER-2013 test-slice faces."""
    return read_fer2013_test(data_root / "face" / "fer2013-test-slice", None, None)[0][:n]


def speech_inputs(n: int, data_root: Path) -> list[Path]:
    """The first ``n`` RAVDESS test-slice clips."""
    return [clip.path for clip in read_test_slice(data_root)[:n]]


def bench_text(texts: list[str]) -> Bench:
    from affect.text import TextEncoder
    from affect.text._batching import tokenize

    encoder = TextEncoder()

    def run(b: int) -> None:
        batch = texts[:b]
        with torch.inference_mode():
            emb = encoder.net.embed(**tokenize(encoder.tokenizer, batch, encoder.max_tokens))
            k = encoder.window
            encoder.net.classify(emb, torch.zeros(len(batch), k, emb.shape[1]), torch.zeros(len(batch), k, dtype=torch.bool),
                                 torch.full((len(batch), k), 2))

    n = min(FLOP_BATCH, len(texts))
    return Bench(encoder, ("net",), counted_flops(lambda: run(n)) / n, run)


def bench_face(faces: np.ndarray) -> Bench:
    from affect.face import FaceEncoder

    encoder = FaceEncoder()
    n = min(FLOP_BATCH, len(faces))
    return Bench(encoder, ("net",), counted_flops(lambda: encoder.predict_proba(faces[:n])) / n,
                 lambda b: encoder.predict_proba(faces[:b]))


def bench_speech(paths: list[Path]) -> Bench:
    from affect.speech import SpeechEncoder

    encoder = SpeechEncoder()
    clips = [encoder.prepare(p.read_bytes()) for p in paths]
    seconds = np.mean([sum(e - s for s, e in c.spans) / 16000 for c in encoder.find_speech(clips)])  # timed below with the VAD
    return Bench(encoder, ("head", "vad._model"), whisper_encoder_flops(seconds, encoder.backbone.blocks_run or WHISPER_TINY["layers"]),
                 lambda b: encoder.analyze_prepared(clips[:b]))


@dataclass(frozen=True)
class Timed:
    """An encoder this benchmark times: ``inputs(n, data_root)`` reads its first ``n`` test inputs
    (for every encoder before anything is timed), ``bench(inputs)`` loads it over them."""

    inputs: Callable[[int, Path], Any]
    bench: Callable[[Any], Bench]


ENCODERS = {"text": Timed(text_inputs, bench_text), "face": Timed(face_inputs, bench_face),
            "speech": Timed(speech_inputs, bench_speech)}


def runtimes_of(name: str, asked: list[str]) -> list[str]:
    """The runtimes to time for one encoder: PyTorch eager first (the baseline), then those
    asked for that the encoder has (int8 only where ``affect.onnx`` offers it)."""
    if asked == ["torch"]:
        return ["torch"]
    try:
        import onnxruntime  # noqa: F401

        from affect.onnx import INT8_ENCODERS
    except ImportError:
        print("onnxruntime is not installed (pip install '.[onnx]'): PyTorch only", file=sys.stderr)
        return ["torch"]
    return ["torch"] + [r for r in asked if r == "onnx" or (r == "onnx-int8" and name in INT8_ENCODERS)]


def time_runtimes(bench: Bench, runtimes: list[str], batch_sizes, repeats: int) -> dict[str, dict[int, float]]:
    """Seconds per batch for every runtime and batch size. The runtimes take turns at each batch
    size, so a change in the machine's load (it is shared) touches them alike."""
    def owner_and_name(path: str) -> tuple[object, str]:
        *parents, name = path.split(".")
        owner = bench.encoder
        for parent in parents:
            owner = getattr(owner, parent)
        return owner, name

    def snapshot() -> list:
        return [getattr(*owner_and_name(path)) for path in bench.attrs]

    def restore(values: list) -> None:
        for path, value in zip(bench.attrs, values):
            setattr(*owner_and_name(path), value)

    from_runtime = {}
    for runtime in runtimes:
        if runtime != "torch":
            from affect.onnx import use_runtime

            use_runtime(bench.encoder, runtime)
        from_runtime[runtime] = snapshot()
        if runtime != "torch":
            use_runtime(bench.encoder, "torch")
    out: dict[str, dict[int, float]] = {r: {} for r in runtimes}
    for b in batch_sizes:
        for runtime in runtimes:
            restore(from_runtime[runtime])
            out[runtime][b] = timed(lambda b=b: bench.run(b), repeats)
    restore(from_runtime["torch"])
    return out


def bench_forecast(repeats: int, calls: int = 200) -> tuple[str, dict[int, float]]:
    """Seconds per turn of the next-turn forecast (``ConversationState`` calls it once per turn
    with a reading): a full window of readings, shared by 2 and by 4 speakers. The probabilities
    are drawn at random: the cost does not depend on them."""
    from affect.forecast import Forecaster
    from affect.forecast_features import Reading

    forecaster = Forecaster()
    rng = np.random.default_rng(0)
    out = {}
    for speakers in (2, 4):
        readings = [Reading.of(i, f"speaker {i % speakers}", rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(3)))
                    for i in range(forecaster.window)]
        out[speakers] = timed(lambda r=readings: [forecaster.forecast(r) for _ in range(calls)], repeats) / calls
    return forecaster.model_id, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=positive_ints, default="1,2,4,8,16,32,64")
    ap.add_argument("--repeats", type=positive_int, default=5)
    ap.add_argument("--encoders", type=names_of(("text", "face", "speech", "forecast")), default="text,face,speech,forecast")
    ap.add_argument("--runtimes", type=names_of(("torch", "onnx", "onnx-int8")), default="torch,onnx,onnx-int8",
                    help="PyTorch eager is always timed, as the baseline; onnx-int8 where affect.onnx offers it")
    ap.add_argument("--data-root", type=Path, default=None)
    add_output_options(ap)
    args = ap.parse_args(argv)
    json_path = report_json(ap, args, "speed", committed_run(ap, "batch_sizes", "repeats", "encoders", "runtimes"))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    runtimes = args.runtimes.split(",")
    data_root = args.data_root or default_data_root()
    names = args.encoders.split(",")
    with missing_data_exits("benchmarks.speed"):  # every encoder's inputs, so that missing data ends the run before any timing
        inputs = {name: ENCODERS[name].inputs(max(*batch_sizes, FLOP_BATCH), data_root) for name in names if name in ENCODERS}
    for name, items in inputs.items():  # a larger batch would time fewer items than it names
        if len(items) < max(batch_sizes):
            ap.error(f"--batch-sizes up to {max(batch_sizes)}: the {name} test inputs under {data_root} are only {len(items)}")

    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    peak = matmul_flops_per_second()
    print(f"float32 matmul: {peak / 1e9:.1f} GFLOP/s", file=sys.stderr)
    metrics: dict[str, float] = {"matmul_gflops": peak / 1e9}
    rows = []
    models = {}
    for name, items in inputs.items():
        bench = ENCODERS[name].bench(items)
        models[name] = bench.encoder.model_id
        flops = bench.flops
        metrics[f"{name}_gflop_per_item"] = flops / 1e9
        times = time_runtimes(bench, runtimes_of(name, runtimes), batch_sizes, args.repeats)
        for runtime, by_batch in times.items():
            for b, t in by_batch.items():
                achieved = flops * b / t
                rows.append([name, runtime, b, t * 1000, t * 1000 / b, b / t, achieved / 1e9, achieved / peak])
                metrics[f"{name}_{runtime}_ms_per_item_{b}"] = t * 1000 / b
                if runtime == "torch":  # the keys of earlier reports: PyTorch eager
                    metrics[f"{name}_items_per_s_{b}"] = b / t
                    metrics[f"{name}_ms_per_item_{b}"] = t * 1000 / b
                else:
                    metrics[f"{name}_{runtime}_speedup_{b}"] = times["torch"][b] / t
        metrics[f"{name}_peak_fraction"] = max(r[-1] for r in rows if r[0] == name and r[1] == "torch")
        best = {r: max(b / t for b, t in by_batch.items()) for r, by_batch in times.items()}
        print(f"{name}: {flops / 1e9:.3f} GFLOP/item, best items/s " + ", ".join(f"{r} {v:.1f}" for r, v in best.items()),
              file=sys.stderr)
    if "forecast" in names:
        models["forecast"], per_turn = bench_forecast(args.repeats)
        metrics["forecast_ms_per_turn"] = per_turn[2] * 1000
        metrics["forecast_ms_per_turn_4_speakers"] = per_turn[4] * 1000
        text_1 = [v for k, v in metrics.items() if k.startswith("text_") and k.endswith("_ms_per_item_1")]
        if text_1:  # beside the fastest runtime's cost of reading the same turn
            metrics["forecast_share_of_text_turn"] = metrics["forecast_ms_per_turn"] / min(text_1)
        print(f"forecast: {per_turn[2] * 1000:.3f} ms per turn (2 speakers), {per_turn[4] * 1000:.3f} ms (4 speakers)",
              file=sys.stderr)
    report = Report(
        task="speed",
        metrics=metrics,
        tables={"Latency and throughput by batch size": (
            ["encoder", "runtime", "batch", "ms/batch", "ms/item", "items/s", "GFLOP/s", "fraction of matmul peak"], rows)},
        models=models,
        notes=[f"Machine load (1-minute load average, {os.cpu_count()} cores): {load_before:.1f} at the start, "
               f"{os.getloadavg()[0]:.1f} at the end (what other processes took is on the first lines); absolute times move with "
               "the machine and its neighbours: compare the runtimes within this run (the speedup keys).",
               f"Best of {args.repeats} runs after a warm-up, torch and ONNX Runtime with {torch.get_num_threads()} threads; "
               "at each batch size the runtimes take turns, so whatever else the machine does touches them alike.",
               "Runtimes: torch = PyTorch eager (the baseline); onnx = the same network as an ONNX graph on ONNX Runtime "
               "(affect.onnx; for speech the head and the Silero VAD, whose package ships it as ONNX too: the Whisper encoder "
               "is CTranslate2 in both); onnx-int8 = "
               "the text encoder's matrix products quantised to int8 (dynamic). <encoder>_<runtime>_speedup_<batch> is "
               "torch's time divided by the runtime's in this run.",
               "Face times include the mirror-image average (two forward passes per face).",
               "Speech FLOPs are the Whisper tiny encoder's, computed from its shape for the mean speech length of the "
               "clips; the trained head adds little. Speech times include the voice detector (Silero, stepped over "
               "32 ms windows, all clips of a batch together): its many small steps, not FLOPs, are most of the time "
               "at small batches, so the speech encoder's fraction of peak is low. Text and face FLOPs are counted on a "
               f"batch of {FLOP_BATCH} MELD turns (padding included) and of {FLOP_BATCH} faces, whatever the batch sizes.",
               "forecast_ms_per_turn: the next-turn forecast of every speaker after one turn, over a full window "
               "shared by 2 speakers (and by 4); forecast_share_of_text_turn divides it by the text encoder's "
               "ms per item at batch 1 on its fastest runtime, the cost of reading the same turn."],
    )
    return publish(report, json_path)


if __name__ == "__main__":
    raise SystemExit(main())

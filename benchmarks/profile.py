"""Where a mixed turn's CPU time goes: the batch path the server runs, sampled by py-spy, summed by stage.

    python -m benchmarks.profile [--batch 32] [--rounds 20] [--rate 100] [--data-root DIR] [--json FILE | --out-dir DIR]

Issue 20 asks to find where the time goes before changing code. This runs ``benchmarks.load``'s
mixed turns (text; text + a 3.5 s clip; text + the clip + a 320x320 frame with one face) through
the path the server's micro-batches take: ``--batch`` turns of as many conversations are
prepared (checks, decoding), each encoder's batch call reads all of their requests at once,
then every turn is recorded and completed (fusion, state, forecast). It runs in a child process
under py-spy (a sampling profiler that reads the process from outside: no instrumentation; the
loop's wall time, waits on native thread pools included), with one thread per model call as the
server gives each of its two workers on two cores, and each sample is put in the stage of its innermost frame that lies in a stage's module
(``STAGES``), so the ONNX Runtime call of the face network counts as the face network, not as
"onnx". gRPC, asyncio and the admission code are not in this path: ``benchmarks.load``
compares the whole service.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from affect.datasets import default_data_root
from benchmarks._args import positive_int
from benchmarks._data import missing_data_exits
from benchmarks._output import add_output_options, committed_run, report_json
from benchmarks._report import Report, write_report
from benchmarks.load import payload_sources

# (module path fragment, stage), innermost match wins; the first fragment that matches a frame names it.
STAGES: tuple[tuple[str, str], ...] = (
    ("affect/face/_blazeface.py", "face: BlazeFace detection"),
    ("affect/face/_detect.py", "face: alignment and crops"),
    ("affect/face/_input.py", "face: image decoding"),
    ("affect/face/_track.py", "face: tracking"),
    ("affect/face/", "face: expression network"),
    ("affect/speech/_vad.py", "speech: voice activity (Silero)"),
    ("affect/speech/_whisper_layers.py", "speech: Whisper encoder (torch, or CTranslate2 for the last layer only)"),
    ("affect/speech/_backbone.py", "speech: Whisper encoder (torch, or CTranslate2 for the last layer only)"),
    ("affect/speech/_audio.py", "speech: audio decoding and resampling"),
    ("affect/speech/", "speech: head and the rest"),
    ("affect/text/", "text: tokeniser and network"),
    ("affect/fusion.py", "fusion"),
    ("affect/forecast", "state and forecast"),
    ("affect/state.py", "state and forecast"),
    ("affect/conversation.py", "turn path (checks, results)"),
    ("affect/turn_flow.py", "turn path (checks, results)"),
    ("affect/results.py", "turn path (checks, results)"),
)
OTHER = "elsewhere (interpreter, libraries called from the benchmark)"
MIXES = ("text", "text+speech", "text+speech+face")


def slug(stage: str) -> str:
    """A metric key's part for a stage: "face: BlazeFace detection" -> "face_blazeface_detection"."""
    return "_".join(re.findall(r"[a-z0-9]+", stage.split("(")[0].lower()))


def stage_of(stack: list[str]) -> str:
    """The stage of a sample: its innermost frame in a stage's module (frames outermost first)."""
    for frame in reversed(stack):
        for fragment, stage in STAGES:
            if fragment in frame:
                return stage
    return OTHER


def summarise(raw: str, within: str = "run_batches (") -> tuple[Counter, int]:
    """Samples per stage from py-spy's raw (collapsed) output, ``frame;frame;... count`` per line,
    of the stacks that pass through ``within`` (the timed loop: model loading is left out)."""
    per_stage: Counter = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or within not in stack:
            continue
        per_stage[stage_of(stack.split(";"))] += int(count)
        total += int(count)
    return per_stage, total


def run_batches(analyzer, conversations: list, turns: list) -> None:
    """The server's batch path over ``turns`` (one per conversation, in batches of len(conversations))."""
    from affect.turn_flow import batch_call, record

    for start in range(0, len(turns), len(conversations)):
        prepared = [c.prepare(t) for c, t in zip(conversations, turns[start:start + len(conversations)])]
        answers: list[dict] = [defaultdict(list) for _ in prepared]
        for modality, encoder in analyzer.encoders.items():
            owners = [(i, req) for i, p in enumerate(prepared) for req in p.requests.get(modality, [])]
            if owners:
                for (i, _), answer in zip(owners, batch_call(encoder)([req for _, req in owners])):
                    answers[i][modality].append(answer)
        for c, p, a in zip(conversations, prepared, answers):
            record(c, p, a)
            c.complete(p)


def workload(batch: int, rounds: int, threads: int, data_root: Path) -> None:
    """The profiled child: load the models with ``threads`` threads per model call (the server's
    default with two workers on two cores is one), then ``rounds`` batches of ``batch`` mixed turns."""
    from affect import Analyzer, Turn
    from benchmarks.load import TEXTS, load_payloads

    from affect_server.app import set_model_threads

    payloads = load_payloads(data_root)
    set_model_threads(threads)  # before the models load, as the server does (CTranslate2 reads it then)
    analyzer = Analyzer(runtime="auto")
    conversations = [analyzer.conversation() for _ in range(batch)]
    turns = []
    for i in range(batch * rounds):
        parts = MIXES[i % len(MIXES)].split("+")
        turns.append(Turn(text=TEXTS[i % len(TEXTS)], speaker="caller", audio=payloads.audio if "speech" in parts else None,
                          images=[payloads.image] if "face" in parts else []))
    run_batches(analyzer, conversations, turns[:batch])  # warm-up batch (first-call costs), also profiled
    start = time.perf_counter()
    run_batches(analyzer, conversations, turns)
    print(f"turns {len(turns)} seconds {time.perf_counter() - start:.3f}", flush=True)


def profile(batch: int, rounds: int, rate: int, threads: int, data_root: Path) -> tuple[Counter, int, float, int]:
    """Run the workload under py-spy; samples per stage, total samples, workload seconds, turns."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw.txt"
        cmd = [sys.executable, "-m", "benchmarks.profile", "--child", "--batch", str(batch), "--rounds", str(rounds),
               "--threads", str(threads), "--data-root", str(data_root)]
        # The workload is this process's own child and py-spy attaches to it, so that waiting for it
        # counts its CPU as this run's (py-spy does not always wait for a child it starts itself).
        workload_process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--idle", "--format", "raw", "--rate", str(rate),
               "--nonblocking", "-o", str(out), "--pid", str(workload_process.pid)]
        done = subprocess.run(spy, capture_output=True, text=True)
        printed, _ = workload_process.communicate()
        if done.returncode != 0 or not out.is_file():
            raise SystemExit(f"py-spy failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        timed = [line for line in printed.splitlines() if line.startswith("turns ")]
        if workload_process.returncode != 0 or not timed:
            raise SystemExit(f"the profiled workload failed ({workload_process.returncode}) or printed no timing: "
                             f"{printed.strip()[-400:]}")
        turns, seconds = (float(v) for v in timed[-1].split()[1::2])
        per_stage, total = summarise(out.read_text())
    return per_stage, total, seconds, int(turns)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=positive_int, default=32, help="turns (of as many conversations) per batch")
    ap.add_argument("--rounds", type=positive_int, default=20,
                    help="batches; each conversation sends one turn a batch, so fewer rounds weigh its first, full face search more")
    ap.add_argument("--rate", type=positive_int, default=100, help="py-spy samples per second")
    add_output_options(ap)
    ap.add_argument("--threads", type=positive_int, default=1, help="threads per model call (the server gives each of its two workers one core)")
    ap.add_argument("--data-root", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    data_root = args.data_root or default_data_root()
    if args.child:
        workload(args.batch, args.rounds, args.threads, data_root)
        return 0
    json_path = report_json(ap, args, "profile", committed_run(ap, "batch", "rounds", "rate", "threads"))
    with missing_data_exits("benchmarks.profile"):
        payload_sources(data_root)  # here, before the child: its traceback would be all a missing file showed
    per_stage, total, seconds, turns = profile(args.batch, args.rounds, args.rate, args.threads, data_root)
    rows = [[stage, n, n / total] for stage, n in per_stage.most_common()]
    metrics = {"turns": turns, "seconds": seconds, "ms_per_turn": 1000 * seconds / turns, "samples": total}
    for stage in dict.fromkeys([s for _, s in STAGES] + [OTHER]):  # every stage, 0 when never sampled
        metrics[f"share_{slug(stage)}"] = per_stage.get(stage, 0) / total
    for group in ("face", "speech", "text"):
        metrics[f"share_{group}_all"] = sum(n for s, n in per_stage.items() if s.startswith(group + ":")) / total
    report = Report(
        task="profile",
        metrics=metrics,
        tables={"Samples by stage (py-spy, innermost frame in a stage's module)": (["stage", "samples", "share"], rows)},
        data={"workload": f"{args.rounds} batches of {args.batch} turns, one turn per conversation, cycling {', '.join(MIXES)}, "
                          f"{args.threads} thread(s) per model call "
                          "(benchmarks.load's payloads: a RAVDESS test clip as FLAC, a FER-2013 test face on a 320x320 PNG)"},
        notes=[
            f"py-spy {args.rate} samples/s of the batch loop's thread, waiting included (--idle): its wall time, with "
            "native work (ONNX Runtime, CTranslate2, LiteRT, OpenCV) counted where Python called it.",
            "Only samples inside the batch loop count (model loading is left out); the warm-up batch is in them.",
            "Not in this path: gRPC, asyncio and admission (benchmarks.load measures the whole service).",
        ],
    )
    write_report(report, json_path, json_path.with_suffix(".md"))
    print(f"{turns} turns in {seconds:.1f} s ({1000 * seconds / turns:.0f} ms a turn); samples by stage:")
    for stage, n, share in rows:
        print(f"  {share:6.1%}  {stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

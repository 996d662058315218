"""Accuracy on real test data, each model beside its baseline in the same run.

    python -m benchmarks.accuracy {text,face,speech,fusion,forecast,all} [--data-root DIR]
        [--full-data DIR] [--json FILE] [--markdown FILE] [--out-dir DIR] [--limit N] [--cross-corpus]
        [--everyday-dialogue] [--unheard-voices]

Each task is a module ``benchmarks/accuracy/<task>.py`` with ``run(args) -> Report``; plots
go to ``args.out_dir``. Writes a JSON report (``--json``), a Markdown report (``--markdown``, default beside the JSON)
and PNG plots beside them; by default all of it lands in ``benchmarks/results/``, the committed
reports (``--out-dir`` for another folder; ``all`` writes one report per task there). A run of
part of a test set (``--limit``) must say where it goes, so that it never replaces them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks._args import positive_int
from benchmarks._data import missing_data_exits
from benchmarks._output import require_named_output
from benchmarks._report import RESULTS_DIR, write_report

TASKS = ("text", "face", "speech", "fusion", "forecast")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=TASKS + ("all",))
    ap.add_argument("--data-root", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--full-data", type=Path, default=None, help="the folder build_datasets.sh filled")
    ap.add_argument("--json", type=Path, default=None, help="JSON report path (default benchmarks/results/accuracy-TASK.json)")
    ap.add_argument("--markdown", type=Path, default=None, help="Markdown report path (default: the JSON path with .md)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="the folder of the reports and plots (default benchmarks/results/, the committed reports)")
    ap.add_argument("--limit", type=positive_int, default=None,
                    help="score only the first N test items (smoke runs; needs --json or --out-dir)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--cross-corpus", "--cross-dataset", action="store_true",
                    help="text, speech: leave-one-corpus-out figures (trains or reuses the recipes' heads; text needs "
                         "`python -m recipes.text_multicorpus.embed --encoders round1` first, about 30 min); face: CK+")
    ap.add_argument("--everyday-dialogue", action="store_true",
                    help="text: every shipped entry on DailyDialog test, dialogue none of them saw (needs --full-data)")
    ap.add_argument("--unheard-voices", action="store_true",
                    help="speech: the default and earlier entries on TESS, voices none of them heard (needs --full-data)")
    ap.add_argument("--text-weights", default=None,
                    help="text: a TextWeights member to read instead of the default (an opt-in entry's one test run)")
    ap.add_argument("--speech-weights", default=None,
                    help="speech: a SpeechWeights member to read instead of the default (an opt-in entry's one test run)")
    args = ap.parse_args(argv)

    tasks = TASKS if args.task == "all" else (args.task,)
    if len(tasks) > 1 and (args.json or args.markdown):
        ap.error("all writes one report per task: give --out-dir, not --json or --markdown")
    environment = []
    if "face" in tasks:  # the face benchmark's baseline weights
        from benchmarks.baselines.fer_mini_xception import FER_MODEL_ENV

        environment.append(FER_MODEL_ENV)
    require_named_output(ap, args, {"limit": None}, environment)  # a part of the test set, other data or weights
    results = args.out_dir or RESULTS_DIR
    if args.everyday_dialogue and tasks != ("text",):
        ap.error("--everyday-dialogue is a text benchmark: give the task text")
    if args.unheard_voices and tasks != ("speech",):
        ap.error("--unheard-voices is a speech benchmark: give the task speech")
    for task in tasks:
        try:
            module = importlib.import_module(f"benchmarks.accuracy.{task}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.accuracy.{task}":
                print(f"accuracy benchmark {task!r} is not written yet", file=sys.stderr)
                if args.task == "all":
                    continue
                return 2
            raise
        name = (f"{task}-cross-corpus" if args.cross_corpus else f"{task}-dailydialog" if args.everyday_dialogue
                else f"{task}-tess" if args.unheard_voices else task)
        chosen = {"text": args.text_weights, "speech": args.speech_weights}.get(task)
        # An entry picked by name has its own report and plots; the default's are never replaced by them.
        args.entry_suffix = "-" + chosen.lower().replace("_", "-") if chosen else ""
        name += args.entry_suffix
        json_path = args.json or results / f"accuracy-{name}.json"
        md_path = args.markdown or json_path.with_suffix(".md")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        args.out_dir = json_path.parent  # plots go beside the report
        if args.cross_corpus and not hasattr(module, "run_cross_corpus"):
            print(f"--cross-corpus is not defined for {task!r}", file=sys.stderr)
            return 2
        with missing_data_exits(f"accuracy {task}"):
            report = _run(module, args)
        write_report(report, json_path, md_path)
        print(md_path.read_text())
        print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _run(module, args: argparse.Namespace):
    if args.cross_corpus:
        return module.run_cross_corpus(args)
    if args.everyday_dialogue:
        from benchmarks.accuracy.text_dialogue import run_everyday_dialogue

        return run_everyday_dialogue(args)
    if args.unheard_voices:
        from benchmarks.accuracy.speech_unheard import run_unheard_voices

        return run_unheard_voices(args)
    return module.run(args)


if __name__ == "__main__":
    raise SystemExit(main())

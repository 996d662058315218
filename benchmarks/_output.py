"""Where a benchmark's report goes. ``benchmarks/results/`` holds the committed reports, the ones
README and the model cards quote: only the run that made one writes it by default. Any other run
(a smoke run, part of the data, another setting) must name its output, so that it never replaces
a committed report silently."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from benchmarks._report import RESULTS_DIR


def add_output_options(ap: argparse.ArgumentParser) -> None:
    """``--json FILE`` and ``--out-dir DIR`` (the report's folder, its plots beside it)."""
    ap.add_argument("--json", type=Path, default=None, help="JSON report path (the Markdown beside it)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="the folder of the report and plots (default benchmarks/results/, the committed reports)")


def committed_run(ap: argparse.ArgumentParser, *dests: str) -> dict[str, object]:
    """The options ``dests`` at their defaults: a tool whose committed report is its default run."""
    return {dest: ap.get_default(dest) for dest in dests}


def require_named_output(ap: argparse.ArgumentParser, args: argparse.Namespace, committed: Mapping[str, object]) -> None:
    """A usage error unless this run is the committed report's run (``committed``: option -> value)
    or says where its report goes (--json or --out-dir)."""
    changed = ["--" + dest.replace("_", "-") for dest, value in committed.items() if getattr(args, dest) != value]
    if changed and not (args.json or args.out_dir):
        ap.error(f"this run's {', '.join(changed)} differ from the committed report's: give --json or --out-dir, "
                 "so that the committed reports in benchmarks/results are not replaced")


def report_json(ap: argparse.ArgumentParser, args: argparse.Namespace, name: str,
                committed: Mapping[str, object]) -> Path:
    """The JSON report's path: --json, else ``<--out-dir or benchmarks/results>/<name>.json``;
    ``require_named_output`` first."""
    require_named_output(ap, args, committed)
    return args.json or (args.out_dir or RESULTS_DIR) / f"{name}.json"

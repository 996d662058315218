"""Where a benchmark's report goes. ``benchmarks/results/`` holds the committed reports, the ones
README and the model cards quote: only the run that made one writes it by default. Any other run
(a smoke run, part of the data, another setting) must name its output, so that it never replaces
a committed report silently.

A run is another run when an option differs from the committed run's, when it reads other data
(--data-root or ``$AFFECT_DATA_ROOT``: every benchmark reads its data through
``affect.datasets.default_data_root``), or when an ``AFFECT_*`` variable that changes what the
benchmark measures is set (the weights, runtime or threads of the servers ``benchmarks.load``
starts, the face baseline's weights): each benchmark names those it reads.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from affect.datasets._common import DATA_ROOT_ENV
from benchmarks._report import RESULTS_DIR


def add_output_options(ap: argparse.ArgumentParser) -> None:
    """``--json FILE`` and ``--out-dir DIR`` (the report's folder, its plots beside it)."""
    ap.add_argument("--json", type=Path, default=None, help="JSON report path (the Markdown beside it)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="the folder of the report and plots (default benchmarks/results/, the committed reports)")


def committed_run(ap: argparse.ArgumentParser, *dests: str) -> dict[str, object]:
    """The options ``dests`` at their defaults: a tool whose committed report is its default run."""
    return {dest: ap.get_default(dest) for dest in dests}


def differences(args: argparse.Namespace, committed: Mapping[str, object], environment: Iterable[str] = ()) -> list[str]:
    """What makes this run another than the committed report's: options whose value differs from
    ``committed`` (option -> value), --data-root, and the variables among ``$AFFECT_DATA_ROOT`` and
    ``environment`` that are set (an empty one is unset, as the readers take it), by name only: a
    server's variables include its token and keys."""
    changed = ["--" + dest.replace("_", "-") for dest, value in committed.items() if getattr(args, dest) != value]
    if args.data_root is not None:
        changed.append("--data-root")
    return changed + [name for name in dict.fromkeys((DATA_ROOT_ENV, *environment)) if os.environ.get(name)]


def require_named_output(ap: argparse.ArgumentParser, args: argparse.Namespace, committed: Mapping[str, object],
                         environment: Iterable[str] = ()) -> None:
    """A usage error unless this run is the committed report's run (``differences``: none) or says
    where its report goes (--json or --out-dir)."""
    changed = differences(args, committed, environment)
    if changed and not (args.json or args.out_dir):
        ap.error(f"this run's {', '.join(changed)} differ from the committed report's: give --json or --out-dir, "
                 "so that the committed reports in benchmarks/results are not replaced")


def report_json(ap: argparse.ArgumentParser, args: argparse.Namespace, name: str,
                committed: Mapping[str, object], environment: Iterable[str] = ()) -> Path:
    """The JSON report's path: --json, else ``<--out-dir or benchmarks/results>/<name>.json``;
    ``require_named_output`` first."""
    require_named_output(ap, args, committed, environment)
    return args.json or (args.out_dir or RESULTS_DIR) / f"{name}.json"

"""Benchmark reports: one JSON and one Markdown file per run, plus PNG plots, with the machine,
the date, the data and the model versions written in."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evaluation.calibration import expected_calibration_error

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STEAL_WARNING = 0.05  # above this share of CPU time taken by the hypervisor, a report's timings are flagged
OTHERS_WARNING = 0.05  # likewise for CPU time used by other processes on this machine


@dataclass(frozen=True)
class CpuTimes:
    """Seconds of CPU time since boot of the whole machine (``/proc/stat``: ``total``, ``busy``
    and ``steal``) and of this process with its waited-for children (``own``)."""

    total: float
    busy: float
    steal: float
    own: float


def cpu_times() -> CpuTimes | None:
    """The machine's and this process's CPU times now (Linux), else None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        tick = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) != 8:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    own = os.times()
    return CpuTimes(total=sum(fields) / tick, busy=(user + nice + system + irq + softirq) / tick, steal=steal / tick,
                    own=own.user + own.system + own.children_user + own.children_system)


# Read when a benchmark starts (every benchmark imports this module first): a virtual machine's
# "steal" is CPU time the hypervisor gave to other machines while this one wanted it, and other
# processes (a training) take cores from the code being timed. Timing figures of a run with much
# of either describe the neighbours as much as the code.
_RUN_START_CPU = cpu_times()


def host_during_run() -> dict[str, Any]:
    """Since the run began: the share of CPU time stolen by the hypervisor, the share used by
    processes other than this one and its finished children (servers the benchmark started
    and stopped count as its own), and the load averages now."""
    out: dict[str, Any] = {}
    now, start = cpu_times(), _RUN_START_CPU
    if now is not None and start is not None and now.total > start.total:
        elapsed = now.total - start.total
        out["cpu_steal_share"] = round((now.steal - start.steal) / elapsed, 3)
        others = (now.busy - start.busy) - (now.own - start.own)
        out["cpu_others_share"] = round(min(max(others / elapsed, 0.0), 1.0), 3)
    try:
        out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return out


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def git_revision() -> str | None:
    """HEAD's short hash, with ``-dirty`` when tracked files differ from it (the code measured is not HEAD's)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=here).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                  ":(top,exclude)benchmarks/results"],  # reports written by earlier runs are not code
                                 capture_output=True, text=True, timeout=5, cwd=here).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return f"{head}-dirty" if changed else head


@dataclass
class Report:
    """What a benchmark found. ``metrics`` is flat: name -> number (the keys the issues fix)."""

    task: str
    metrics: dict[str, float]
    tables: dict[str, tuple[list[str], list[list[Any]]]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_revision": git_revision(),
            "machine": machine_info(),
            "host_during_run": host_during_run(),
            "metrics": self.metrics,
            "models": self.models,
            "data": self.data,
            "tables": {k: {"columns": cols, "rows": rows} for k, (cols, rows) in self.tables.items()},
            "notes": self.notes,
            "plots": self.plots,
            **({"extra": self.extra} if self.extra else {}),
        }


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: Report, data: dict[str, Any]) -> str:
    m = data["machine"]
    out = [
        f"# affect benchmark: {report.task}",
        "",
        f"{data['date']}, git {data['git_revision']}, {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), "
        f"torch {m['torch']} with {m['torch_threads']} threads.",
        "",
    ]
    host = data.get("host_during_run", {})
    if "cpu_steal_share" in host:
        steal = host["cpu_steal_share"]
        others = host.get("cpu_others_share")
        line = f"During the run the hypervisor took {steal:.0%} of the CPU time (steal)"
        if others is not None:
            line += f" and other processes on this machine {others:.0%}"
        line += f"; load average at the end {host.get('load_average')}."
        if steal > STEAL_WARNING or (others or 0.0) > OTHERS_WARNING:
            line += " **Timings of this run are low by about that much and vary with the neighbours'; compare only ratios taken in the same run.**"
        out += [line, ""]
    for title, (cols, rows) in report.tables.items():
        out += [f"## {title}", "", markdown_table(cols, rows), ""]
    out += ["## Metrics", "", markdown_table(["metric", "value"], [[k, v] for k, v in report.metrics.items()]), ""]
    if report.models:
        out += ["## Models", ""] + [f"- `{k}`: {v}" for k, v in report.models.items()] + [""]
    if report.data:
        out += ["## Data", ""] + [f"- {k}: {v}" for k, v in report.data.items()] + [""]
    if report.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    if report.plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in report.plots] + [""]
    return "\n".join(out)


def write_report(report: Report, json_path: Path | None, markdown_path: Path | None) -> dict[str, Any]:
    data = report.to_dict()
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(data, indent=2) + "\n")
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(render_markdown(report, data))
    return data


def publish(report: Report, json_path: Path, markdown_path: Path | None = None) -> int:
    """A command-line benchmark's ending: the report as JSON and Markdown (beside the JSON unless
    given), the Markdown printed; the exit status 0."""
    markdown_path = markdown_path or json_path.with_suffix(".md")
    write_report(report, json_path, markdown_path)
    print(markdown_path.read_text())
    return 0


def _pyplot():
    """matplotlib's pyplot, drawing to files only (no screen here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """The figure as a PNG at ``path``, closed."""
    plt = _pyplot()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix_png(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    plt = _pyplot()

    n = len(labels)
    counts = np.zeros((n, n), dtype=int)
    for t, p in zip(y_true, y_pred):
        counts[t, p] += 1
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2, 1.0 * n + 1.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def speaker_shares_png(shares: dict[str, dict[str, dict[str, float]]], path: Path, title: str, bar: float) -> Path:
    """Each speaker's share of their clips given to their most frequent answer, one column of dots per
    group (a held-out corpus), one colour per model, with the bar drawn across."""
    plt = _pyplot()

    groups = sorted({g for by_group in shares.values() for g in by_group})
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 2.5, 4))
    width = 0.7 / max(1, len(shares))
    for k, (model, by_group) in enumerate(shares.items()):
        for i, group in enumerate(groups):
            values = list(by_group.get(group, {}).values())
            xs = i - 0.35 + width * (k + 0.5) + np.linspace(-width / 3, width / 3, len(values)) if values else []
            ax.scatter(xs, values, s=14, color=f"C{k}", label=model if i == 0 else None)
    ax.axhline(bar, ls="--", color="grey", lw=1, label=f"{bar:.0%}")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of the top answer, per speaker")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside the dots, never over them
    return _save(fig, path)


def reliability_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str, bins: int = 15) -> Path:
    """Reliability diagram: accuracy against confidence, one line per (probs, labels) curve."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    edges = np.linspace(0, 1, bins + 1)
    for name, (probs, labels) in curves.items():
        conf, correct = probs.max(1), (probs.argmax(1) == labels)
        xs, ys = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (conf > lo) & (conf <= hi)
            if sel.sum() >= 5:
                xs.append(conf[sel].mean())
                ys.append(correct[sel].mean())
        ece = expected_calibration_error(probs, labels, bins)
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def load_curves_png(curves: dict[str, list[tuple[int, float, float]]], path: Path, title: str) -> Path:
    """Turns per second and p99 latency against concurrent conversations, one line per server;
    ``curves``: server -> [(conversations, turns/s, p99 ms)]."""
    plt = _pyplot()

    fig, (rate_ax, p99_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in curves.items():
        points = sorted(points)
        ns = [n for n, _, _ in points]
        rate_ax.plot(ns, [rate for _, rate, _ in points], marker="o", label=name)
        p99_ax.plot(ns, [p99 / 1000 for _, _, p99 in points], marker="o", label=name)
    levels = sorted({n for points in curves.values() for n, _, _ in points})
    for ax, label in ((rate_ax, "turns answered per second"), (p99_ax, "p99 turn latency (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(n) for n in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent conversations")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    rate_ax.set_ylim(bottom=0)
    p99_ax.set_yscale("log")
    rate_ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def bootstrap_ci(metric, y_true: np.ndarray, y_pred: np.ndarray, *, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(y_true, y_pred)`` over resampled items."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n):
        idx = rng.integers(0, len(y_true), len(y_true))
        stats.append(metric(y_true[idx], y_pred[idx]))
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)

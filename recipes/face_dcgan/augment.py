"""The augmentation experiment (issue 23, point 3): do generated disgust and fear faces in the
face network's training set make it read those expressions better?

    python -m recipes.face_dcgan.augment generate        # generated faces -> generated/faces.npz (data, never committed)
    python -m recipes.face_fer.train --config recipes/face_dcgan/face_fer_without.json \\
        --workdir recipes/face_dcgan/checkpoints/arm-without --out recipes/face_dcgan/checkpoints/arm-without.safetensors
    python -m recipes.face_fer.train --config recipes/face_dcgan/face_fer_with.json \\
        --workdir recipes/face_dcgan/checkpoints/arm-with --out recipes/face_dcgan/checkpoints/arm-with.safetensors
    python -m recipes.face_dcgan.augment evaluate --full-data /work/full-data   # both arms, FER-2013 test, once
    python -m recipes.face_dcgan.augment plot        # augment-results.png from augment-results.json

The two arms are the face recipe's stage 1 with everything fixed (seed, schedule, held-back
part, augmentation) but the generated faces added to the training part of one of them.
``evaluate`` reads FER-2013 test (duplicates of train faces removed) once for both, in one run:
accuracy and per-class recall with paired bootstrap intervals over test faces, and applies the
decision rule that ``config.json`` fixed before any figure was read.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from affect.datasets import default_data_root
from affect.datasets.face import read_fer2013_test
from affect.face._weights_io import load_face_weights
from affect.labels import EMOTION_NAMES, emotion_index
from recipes.face_dcgan.network import Generator
from recipes.face_dcgan.samples import to_uint8
from recipes.face_fer.train import predict

log = logging.getLogger("recipes.face_dcgan.augment")
HERE = Path(__file__).resolve().parent
ARMS = {"without": HERE / "checkpoints/arm-without.safetensors", "with": HERE / "checkpoints/arm-with.safetensors"}


def generate(cfg: dict, workdir: Path, out: Path) -> None:
    """The configured number of generated faces per class from the trained generator (its last epoch)."""
    gen = Generator(cfg["latent"], cfg["class_embedding"], cfg["gen_width"])
    gen.load_state_dict(torch.load(workdir / "last.pt", weights_only=False)["gen"])
    gen.eval()
    noise = torch.Generator().manual_seed(cfg["augment"]["generated_seed"])
    faces, labels = [], []
    with torch.inference_mode():
        for name, count in cfg["augment"]["generated_per_class"].items():
            c = emotion_index(name)
            faces.append(to_uint8(gen(torch.randn(count, cfg["latent"], generator=noise), torch.full((count,), c))))
            labels.append(np.full(count, c, dtype=np.int64))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, faces=np.concatenate(faces), labels=np.concatenate(labels))
    log.info("wrote %d generated faces to %s", sum(len(l) for l in labels), out)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy and the recall of each emotion."""
    out = {"accuracy": float((pred == truth).mean())}
    for c, name in enumerate(EMOTION_NAMES):
        out[f"recall_{name}"] = float((pred[truth == c] == c).mean()) if (truth == c).any() else float("nan")
    return out


def bootstrap(preds: dict[str, np.ndarray], truth: np.ndarray, resamples: int, seed: int) -> dict[str, dict]:
    """Each arm's figures and the paired change (with minus without), each with a 95% interval
    from resampling the test faces (the same resample for both arms)."""
    rng = np.random.default_rng(seed)
    point = {arm: scores(p, truth) for arm, p in preds.items()}
    draws: dict[str, list[dict[str, float]]] = {arm: [] for arm in preds}
    for _ in range(resamples):
        idx = rng.integers(0, len(truth), len(truth))
        for arm, p in preds.items():
            draws[arm].append(scores(p[idx], truth[idx]))
    report: dict[str, dict] = {}
    for key in point["without"]:
        row = {}
        for arm in preds:
            values = np.array([d[key] for d in draws[arm]])
            row[arm] = [point[arm][key], *np.nanpercentile(values, [2.5, 97.5]).tolist()]
        change = np.array([w[key] - wo[key] for w, wo in zip(draws["with"], draws["without"])])
        row["change"] = [point["with"][key] - point["without"][key], *np.nanpercentile(change, [2.5, 97.5]).tolist()]
        report[key] = row
    return report


def decide(report: dict[str, dict]) -> tuple[bool, str]:
    """The rule of ``config.json`` (``augment.rule``), applied to the intervals."""
    rises = [name for name in ("disgust", "fear") if report[f"recall_{name}"]["change"][1] > 0]
    accuracy_falls = report["accuracy"]["change"][2] < 0
    adopt = bool(rises) and not accuracy_falls
    why = (f"recall rises with an interval above 0 for: {', '.join(rises) or 'neither disgust nor fear'}; "
           f"accuracy change interval {'wholly below 0' if accuracy_falls else 'not wholly below 0'}")
    return adopt, why


def evaluate(cfg: dict, full_data: Path, out: Path) -> dict:
    data_root = default_data_root()
    faces, truth, dropped = read_fer2013_test(full_data / "fer2013/archive/test",
                                              data_root / "face/fer2013-test-duplicates.txt", None)
    preds = {arm: predict(load_face_weights(path), faces).argmax(1) for arm, path in ARMS.items()}
    report = bootstrap(preds, truth, cfg["augment"]["bootstrap_resamples"], cfg["seed"])
    adopt, why = decide(report)
    result = {"test": f"FER-2013 test, {len(truth)} faces ({dropped} duplicates of train faces dropped)",
              "figures": report, "adopt": adopt, "why": why, "rule": cfg["augment"]["rule"],
              "generated_per_class": cfg["augment"]["generated_per_class"]}
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def table(result: dict) -> str:
    lines = ["| FER-2013 test | without | with generated faces | change (with - without) |", "|---|---|---|---|"]
    fmt = lambda v: f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"  # noqa: E731
    for key, row in result["figures"].items():
        lines.append(f"| {key.replace('recall_', 'recall ')} | {fmt(row['without'])} | {fmt(row['with'])} | "
                     f"{row['change'][0]:+.3f} [{row['change'][1]:+.3f}, {row['change'][2]:+.3f}] |")
    return "\n".join(lines)


def plot(result: dict, out: Path) -> Path:
    """Accuracy and per-class recall of both arms with their intervals, one PNG (from the results file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(result["figures"])
    labels = [k.replace("recall_", "") for k in keys]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for shift, arm, colour in ((-0.18, "without", "#9e9e9e"), (0.18, "with", "#3b75af")):
        rows = [result["figures"][k][arm] for k in keys]
        x = np.arange(len(keys)) + shift
        mid = np.array([r[0] for r in rows])
        err = np.array([[r[0] - r[1] for r in rows], [r[2] - r[0] for r in rows]])
        ax.bar(x, mid, width=0.36, color=colour, label=f"{arm} generated faces")
        ax.errorbar(x, mid, yerr=err, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(np.arange(len(keys)), labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("FER-2013 test")
    ax.set_title("Stage 1 of the face recipe with and without generated disgust and fear faces (95% intervals)", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("generate", "evaluate", "plot"))
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--generated", type=Path, default=HERE / "generated/faces.npz")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--out", type=Path, default=HERE / "augment-results.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    if args.step == "generate":
        generate(cfg, args.workdir, args.generated)
        return 0
    if args.step == "plot":  # from the results file: the test is not read again
        print(f"wrote {plot(json.loads(args.out.read_text()), args.out.with_name('augment-results.png'))}")
        return 0
    result = evaluate(cfg, args.full_data, args.out)
    plot(result, args.out.with_name("augment-results.png"))
    print(result["test"])
    print(table(result))
    print(f"adopt: {result['adopt']} ({result['why']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

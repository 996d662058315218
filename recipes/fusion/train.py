"""Train the late-fusion head on label-matched combinations of the encoders' validation outputs.

    python -m recipes.fusion.train --full-data /work/full-data [--data-root ../shared/data]

No public data set has the same turn in all three modalities, so a training example is made:
draw an emotion (uniformly: the combinations have no class prior of their own), then one face,
one speech clip and one text turn of that emotion, each represented by what its encoder said
about it. The encoders' *validation* outputs are used, not their training outputs, because an
encoder is over-confident on data it learned from and the head must learn how far to trust it
on new data. Some three-modality combinations are made to conflict (one modality drawn from
another emotion, the target being the emotion the other two share), so the head learns to
out-vote one wrong modality. Test splits are never read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import zlib
from pathlib import Path

import numpy as np
import torch

from affect.fusion import MULTI_SUBSETS, LateFusionHead, subset_name
from affect.labels import EMOTIONS
from affect.results import MODALITIES
from recipes.fusion.predictions import Predictions, cached

log = logging.getLogger("recipes.fusion.train")
HERE = Path(__file__).resolve().parent


def make_combinations(pools: dict[str, Predictions], n: int, conflict_rate: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``log_probs [n, 3, 7]`` (modalities in MODALITIES order) and targets ``[n]``."""
    by_label = {m: {c: np.flatnonzero(p.labels == c) for c in range(len(EMOTIONS))} for m, p in pools.items()}
    classes = [c for c in range(len(EMOTIONS)) if all(len(by_label[m][c]) for m in pools)]
    targets = rng.choice(classes, size=n)
    log_probs = np.zeros((n, len(MODALITIES), len(EMOTIONS)), dtype=np.float32)
    for row, y in enumerate(targets):
        conflicted = rng.random() < conflict_rate
        odd_one = rng.integers(len(MODALITIES)) if conflicted else -1
        for i, m in enumerate(MODALITIES):
            label = y
            if i == odd_one:
                label = rng.choice([c for c in classes if c != y])
            pick = rng.choice(by_label[m.value][label])
            log_probs[row, i] = np.log(np.clip(pools[m.value].calibrated[pick], 1e-8, 1.0))
    return log_probs, targets


def split_pools(pools: dict[str, Predictions], rng: np.random.Generator, part: int) -> dict[str, Predictions]:
    """One of two halves of every pool, split by item within each label (same split for both parts)."""
    out = {}
    for m, p in pools.items():
        keep = np.zeros(len(p.labels), dtype=bool)
        for c in np.unique(p.labels):
            seed = zlib.crc32(f"{m}:{int(c)}".encode())  # stable across runs, unlike hash()
            idx = np.random.default_rng(seed).permutation(np.flatnonzero(p.labels == c))
            keep[idx[part::2]] = True
        out[m] = Predictions(p.raw[keep], p.calibrated[keep], p.labels[keep], p.model)
    return out


def accuracy_by_subset(head: LateFusionHead, log_probs: np.ndarray, subsets: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    with torch.no_grad():
        pred = head(torch.from_numpy(log_probs), torch.from_numpy(subsets)).argmax(1).numpy()
    return {subset_name(s): float((pred[subsets == i] == targets[subsets == i]).mean()) for i, s in enumerate(MULTI_SUBSETS)}


def log_prior(labels: np.ndarray) -> np.ndarray:
    """Log class frequencies (add-one smoothed): the prior an encoder learned from its data.

    Read from the validation labels, which follow the training split's distribution."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)) + 1.0
    return np.log(counts / counts.sum())


def fit(head: LateFusionHead, log_probs: np.ndarray, subsets: np.ndarray, targets: np.ndarray, l2: float,
        steps: int = 300) -> None:
    """Cross-entropy, with an L2 pull towards the Bayes starting point the head holds now."""
    x, s, y = torch.from_numpy(log_probs), torch.from_numpy(subsets), torch.from_numpy(targets)
    start = {k: v.detach().clone() for k, v in head.state_dict().items()}
    optimizer = torch.optim.LBFGS(head.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x, s), y)
        loss = loss + l2 * ((head.exponents - start["exponents"]) ** 2).sum() + l2 * ((head.bias - start["bias"]) ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)


def joined(parts: list[Predictions]) -> Predictions:
    """Several pools of one encoder as one (the first one's model name)."""
    return Predictions(np.concatenate([p.raw for p in parts]), np.concatenate([p.calibrated for p in parts]),
                       np.concatenate([p.labels for p in parts]), parts[0].model)


SPEECH_VALIDATION = {"ravdess": ("val",), "all": ("val", "val-other-voices")}  # the config's speech_validation


def validation_parts(cfg: dict, data_root: Path | None, full_data: Path, speech: str | None = None) -> dict[str, list[Predictions]]:
    """Each encoder's validation pools: one for text and faces; for speech RAVDESS's actors 21-22, and
    with ``speech_validation`` "all" also the other corpora's validation speakers."""
    speech = speech or cfg.get("speech_validation", "ravdess")
    splits = {m.value: ("val",) for m in MODALITIES} | {"speech": SPEECH_VALIDATION[speech]}
    return {m: [cached(m, split, data_root, full_data) for split in splits[m]] for m in splits}


def halves_of(parts: dict[str, list[Predictions]], rng: np.random.Generator) -> list[dict[str, Predictions]]:
    """The two halves of every pool, each part of a pool halved on its own (RAVDESS's halves do not
    depend on what else joins it)."""
    return [{m: joined([split_pools({m: p}, rng, half)[m] for p in ps]) for m, ps in parts.items()} for half in (0, 1)]


def bayes_start(pools: dict[str, Predictions]) -> torch.Tensor:
    return torch.tensor(np.stack([log_prior(pools[m.value].labels) for m in MODALITIES]), dtype=torch.float32)


def choose_l2(halves: list[dict[str, Predictions]], cfg: dict, rng: np.random.Generator, log_priors: torch.Tensor
              ) -> tuple[float, dict[float, dict[str, float]]]:
    """The L2 whose head, fitted on combinations of the first halves, reads those of the second best.

    Choose the regularisation on items the head has not seen: combinations for fitting and for
    scoring are drawn from disjoint halves of every validation pool (the speech pool is small,
    so combinations that share clips would flatter an over-fitted head)."""
    scores = {}
    for l2 in cfg["l2_grid"]:
        x_fit, y_fit = make_combinations(halves[0], cfg["combinations"], cfg["conflict_rate"], rng)
        x_eval, y_eval = make_combinations(halves[1], cfg["combinations"] // 4, 0.0, rng)
        s_fit, s_eval = rng.integers(len(MULTI_SUBSETS), size=len(y_fit)), rng.integers(len(MULTI_SUBSETS), size=len(y_eval))
        head = LateFusionHead()
        head.bayes_init(log_priors)
        fit(head, x_fit, s_fit, y_fit, l2)
        scores[l2] = accuracy_by_subset(head, x_eval, s_eval, y_eval)
        log.info("l2 %g: held-out accuracy by subset %s", l2, json.dumps({k: round(v, 3) for k, v in scores[l2].items()}))
    best_l2 = max(scores, key=lambda l2: np.mean(list(scores[l2].values())))
    log.info("chosen l2 %g", best_l2)
    return best_l2, scores


def fitted_head(pools: dict[str, Predictions], cfg: dict, rng: np.random.Generator, log_priors: torch.Tensor,
                l2: float) -> LateFusionHead:
    log_probs, targets = make_combinations(pools, cfg["combinations"], cfg["conflict_rate"], rng)
    subsets = rng.integers(len(MULTI_SUBSETS), size=len(targets))
    head = LateFusionHead()
    head.bayes_init(log_priors)
    fit(head, log_probs, subsets, targets, l2)
    return head


def recipe_parser(description: str | None) -> argparse.ArgumentParser:
    """The flags every entry point of this recipe takes: its config and the data it reads."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--full-data", type=Path, required=True, help="the folder build_datasets.sh filled")
    return ap


def main(argv: list[str] | None = None) -> None:
    ap = recipe_parser(__doc__)
    ap.add_argument("--out", type=Path, default=Path("affect/models/fusion/late_fusion_v3.safetensors"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])

    parts = validation_parts(cfg, args.data_root, args.full_data)
    pools = {m: joined(ps) for m, ps in parts.items()}
    for m, p in pools.items():
        log.info("%s validation outputs: %d items, accuracy %.3f", m, len(p.labels), (p.calibrated.argmax(1) == p.labels).mean())
    log_priors = bayes_start(pools)
    best_l2, scores = choose_l2(halves_of(parts, rng), cfg, rng, log_priors)
    head = fitted_head(pools, cfg, rng, log_priors, best_l2)
    held = scores[best_l2]
    log.info("exponents:\n%s\nbiases:\n%s", head.exponents.detach().numpy().round(2), head.bias.detach().numpy().round(2))

    from safetensors.torch import save_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"recipe": "recipes/fusion", "config": cfg, "chosen_l2": best_l2, "held_out_accuracy": held,
            "encoders": {m: p.model for m, p in pools.items()}}
    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(args.out),
              metadata={"affect_meta": json.dumps(meta)})
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()

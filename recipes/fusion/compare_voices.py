"""Late fusion's speech validation pool, RAVDESS's alone against every speech corpus's: recipe against recipe.

    python -m recipes.fusion.compare_voices --full-data /work/full-data

The rule is ``speech_voices_rule`` in ``config.json``. Each arm runs the recipe (``train.py``: its
seed, its L2 choice) with its own speech validation pool, but fits its head on the first halves of
the pools only; both heads then read the same combinations of the second halves, once with every
corpus's validation speakers as the speech pool and once with RAVDESS's alone. Every pool is halved
on its own (``train.halves_of``), so RAVDESS's second half is the same in both arms and neither head
has fitted a clip it is scored on. Validation outputs only: no test split is read.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import torch

from affect.fusion import MULTI_SUBSETS
from recipes.fusion.train import (SPEECH_VALIDATION, accuracy_by_subset, bayes_start, choose_l2, fitted_head, halves_of,
                                  joined, make_combinations, recipe_parser, validation_parts)

SCORED_COMBINATIONS = 10_000
SCORING_SEED = 2026


def main(argv: list[str] | None = None) -> int:
    args = recipe_parser(__doc__).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    heads, second_halves = {}, {}
    for arm in SPEECH_VALIDATION:
        torch.manual_seed(cfg["seed"])
        rng = np.random.default_rng(cfg["seed"])
        parts = validation_parts(cfg, args.data_root, args.full_data, speech=arm)
        halves = halves_of(parts, rng)
        log_priors = bayes_start({m: joined(ps) for m, ps in parts.items()})
        l2, _ = choose_l2(halves, cfg, rng, log_priors)
        heads[arm] = (fitted_head(halves[0], cfg, rng, log_priors, l2), l2)
        second_halves[arm] = halves[1]
    print("| speech pool scored | " + " | ".join(f"{arm} arm (L2 {l2:g})" for arm, (_, l2) in heads.items()) + " |")
    print("|---|" + "---|" * len(heads))
    for pool in SPEECH_VALIDATION:  # the "all" arm's second halves hold RAVDESS's and the other corpora's
        rng = np.random.default_rng(SCORING_SEED)
        x, y = make_combinations(second_halves[pool], SCORED_COMBINATIONS, 0.0, rng)
        subsets = rng.integers(len(MULTI_SUBSETS), size=len(y))
        scores = {arm: accuracy_by_subset(head, x, subsets, y) for arm, (head, _) in heads.items()}
        for subset in scores["ravdess"]:
            print(f"| {pool}: {subset} | " + " | ".join(f"{scores[arm][subset]:.4f}" for arm in heads) + " |")
        print(f"| {pool}: mean of the four | " + " | ".join(f"**{np.mean(list(scores[arm].values())):.4f}**" for arm in heads)
              + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Average the weights of several epochs of one run ("model soup"), keep it only if dev says so.

    python -m recipes.text_meld.soup CKPT [CKPT ...] [--out affect/models/text/minilm_meld_v1.safetensors]

Each CKPT is a training checkpoint holding ``{"net": state_dict}`` (``checkpoints/epoch_N.pt`` or
``best.pt``). The uniform average of the checkpoints is scored on MELD dev beside the single
best checkpoint (``checkpoints/best.pt``); whichever is higher is exported. Test is never read.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from affect.datasets import read_meld
from affect.text._weights_io import save_text_weights
from recipes.text_meld.train import HERE, build_net, evaluate

log = logging.getLogger("recipes.text_meld.soup")


def average(paths: list[Path]) -> dict[str, torch.Tensor]:
    states = [torch.load(p, weights_only=False)["net"] for p in paths]
    return {k: sum(s[k].float() for s in states) / len(states) if states[0][k].is_floating_point() else states[-1][k]
            for k in states[0]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--best", type=Path, default=HERE / "checkpoints" / "best.pt")
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("affect/models/text/minilm_meld_v1.safetensors"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg["torch_threads"])
    tokenizer, net = build_net(cfg)
    dev = read_meld("dev", args.data_root)
    candidates = {"best": torch.load(args.best, weights_only=False)["net"], "soup": average(args.checkpoints)}
    scores = {}
    for name, state in candidates.items():
        net.load_state_dict(state, strict=False)  # checkpoints may predate the calibration buffers
        scores[name] = evaluate(net, tokenizer, dev, cfg)
        log.info("%s: dev %s", name, json.dumps({k: round(v, 4) for k, v in scores[name].items()}))
    chosen = max(scores, key=lambda n: scores[n]["weighted_f1"])
    net.load_state_dict(candidates[chosen], strict=False)
    meta = {
        "recipe": "recipes/text_meld",
        "config": cfg,
        "selection": {"chosen": chosen, "soup_of": [p.name for p in args.checkpoints],
                      "dev": {n: s["weighted_f1"] for n, s in scores.items()}},
        "dev_metrics": scores[chosen],
    }
    save_text_weights(net, args.out, meta)
    log.info("exported %s (%s, dev weighted-F1 %.4f)", args.out, chosen, scores[chosen]["weighted_f1"])


if __name__ == "__main__":
    main()

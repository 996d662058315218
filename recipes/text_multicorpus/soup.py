"""A greedy weight soup of MiniLM networks fine-tuned from one start: more accuracy at one network's CPU.

    python -m recipes.text_multicorpus.soup --entry MINILM_MULTICORPUS_V7 --entry MINILM_MULTICORPUS_V6 \
        --checkpoint /work/cache/text-finetune-loco-xed/best.pt ... --workdir /work/cache/text-soup
    python -m recipes.text_multicorpus.soup --entry MINILM_MELD_V1 --checkpoint /work/cache/text-from-r1/best.pt \
        --line 0.25 0.5 0.75 --workdir /work/cache/text-line-r1       # points between a network and a run from it
    python -m recipes.text_multicorpus.finetune final --workdir /work/cache/text-soup --out OUT.safetensors

Every ``finetune.py`` run of the MiniLM recipe starts from the same packaged encoder and, with the
config's seed, the same initial heads; runs that differ in their loss (a teacher), their corpus mix
(a held-out fold) or their pseudo-context share end in one basin, where averaging their weights
tends to read better than any one of them and costs nothing per turn (Wortsman et al., "Model
soups", ICML 2022). The greedy soup of that paper: read every ingredient on dev (``finetune.evaluate``,
the recipe's ``select``), order them best first, and add each in turn to the running average if the
average's dev ``select`` does not fall. The soup is written as ``best.pt`` in ``--workdir`` (what
``finetune.py final`` exports, with temperatures and prior fitted as for any run) and every reading
to ``soup.json``. Dev splits only; no test split is read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from affect.text._network import TextAffectNet
from recipes._weight_space import average, interpolate
from recipes.text_multicorpus.finetune import (HERE, build_net, dev_units, evaluate, finetune_config, load_learnt,
                                               start_from_shipped)

log = logging.getLogger("recipes.text_multicorpus")
StateDict = dict[str, torch.Tensor]


def learnt_weights(net: TextAffectNet) -> StateDict:
    """The network's weights without its calibration buffers (each run's are refitted by ``final``)."""
    return {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
            for k, v in net.state_dict().items() if k not in TextAffectNet.CALIBRATION_BUFFERS}


def ingredient_weights(net: TextAffectNet, source: str, start: StateDict) -> StateDict:
    """A shipped entry's weights (``entry:NAME``) or a run's checkpoint (a path to its ``best.pt``).

    A shipped entry stores only what its run trained; the rest (the word embeddings, the lowest
    layer) is put back from ``start``, the packaged network, whatever ``net`` held before."""
    if source.startswith("entry:"):
        net.load_state_dict(start, strict=False)
        start_from_shipped(net, source.removeprefix("entry:"))
    else:
        load_learnt(net, torch.load(source, weights_only=False)["net"], source)
    return learnt_weights(net)


def greedy_soup(net: TextAffectNet, tokenizer, dev: dict, cfg: dict, sources: list[str],
                log_path: Path) -> tuple[StateDict, dict]:
    """Wortsman et al.'s greedy soup over ``sources``; returns the soup and the record of every reading.
    ``net`` comes in as built (``finetune.build_net``): its frozen parts are every entry's."""
    record: dict = {"select": cfg["select"], "ingredients": {}, "steps": []}
    start = learnt_weights(net)
    weights: dict[str, StateDict] = {}
    for source in sources:
        weights[source] = ingredient_weights(net, source, start)
        started = time.time()
        record["ingredients"][source] = evaluate(net, tokenizer, dev, cfg)
        log.info("%s: dev select %.4f (%.0f s)", source, record["ingredients"][source]["select"], time.time() - started)
        log_path.write_text(json.dumps(record, indent=2) + "\n")
    order = sorted(sources, key=lambda s: record["ingredients"][s]["select"], reverse=True)
    kept = [order[0]]
    best = record["ingredients"][order[0]]
    for source in order[1:]:
        candidate = average([weights[s] for s in kept + [source]])
        net.load_state_dict(candidate, strict=False)
        metrics = evaluate(net, tokenizer, dev, cfg)
        added = metrics["select"] >= best["select"]
        record["steps"].append({"tried": source, "with": list(kept), "metrics": metrics, "added": added})
        log.info("soup of %d + %s: dev select %.4f (%s)", len(kept), source, metrics["select"],
                 "added" if added else "left out")
        if added:
            kept.append(source)
            best = metrics
        log_path.write_text(json.dumps(record, indent=2) + "\n")
    record |= {"kept": kept, "metrics": best}
    log_path.write_text(json.dumps(record, indent=2) + "\n")
    return average([weights[s] for s in kept]), record


def line(net: TextAffectNet, tokenizer, dev: dict, cfg: dict, start_source: str, end_source: str,
         alphas: list[float], log_path: Path) -> tuple[StateDict, dict]:
    """Points ``start + a * (end - start)`` between a network and a run started from it (WiSE-FT,
    Wortsman et al., CVPR 2022), each read on dev; returns the point with the best select and the record."""
    start_weights = learnt_weights(net)
    ends = [ingredient_weights(net, source, start_weights) for source in (start_source, end_source)]
    record: dict = {"select": cfg["select"], "start": start_source, "end": end_source, "points": {}}
    best_a, best_state, best = None, None, None
    for a in alphas:
        point = interpolate(ends[0], ends[1], a)
        net.load_state_dict(point, strict=False)
        metrics = record["points"][f"{a:g}"] = evaluate(net, tokenizer, dev, cfg)
        log.info("a = %.2f: dev select %.4f", a, metrics["select"])
        if best is None or metrics["select"] > best["select"]:
            best_a, best_state, best = a, point, metrics
        log_path.write_text(json.dumps(record, indent=2) + "\n")
    record |= {"kept": [f"a={best_a:g}"], "metrics": best}
    log_path.write_text(json.dumps(record, indent=2) + "\n")
    return best_state, record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--entry", action="append", default=[], metavar="NAME",
                    help="a shipped text entry of the recipe's network (TextWeights name), repeatable")
    ap.add_argument("--checkpoint", action="append", default=[], type=Path, metavar="PT",
                    help="a finetune.py run's best.pt, repeatable")
    ap.add_argument("--line", type=float, nargs="+", default=None, metavar="A",
                    help="instead of a greedy soup: the two ingredients are the ends of a line (the first the start), "
                         "read at these points (0: the start, 1: the end)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sources = [f"entry:{e}" for e in args.entry] + [str(p) for p in args.checkpoint]
    if len(sources) < 2 or (args.line and len(sources) != 2):
        ap.error("a soup needs at least two ingredients, a line exactly two")
    cfg = finetune_config(json.loads(args.config.read_text()))
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["torch_threads"])
    tokenizer, net = build_net(cfg)
    net.eval()
    dev = dev_units(cfg, args.data_root)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.line:
        soup, record = line(net, tokenizer, dev, cfg, sources[0], sources[1], args.line, args.workdir / "line.json")
    else:
        soup, record = greedy_soup(net, tokenizer, dev, cfg, sources, args.workdir / "soup.json")
    net.load_state_dict(soup, strict=False)
    torch.save({"net": net.state_dict(), "metrics": record["metrics"] | {"soup": record["kept"]}},
               args.workdir / "best.pt")
    log.info("kept %d of %d: %s; dev %s", len(record["kept"]), len(sources), record["kept"],
             {k: round(v, 4) for k, v in record["metrics"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

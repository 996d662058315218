"""Text across corpora: leave-one-corpus-out macro-F1, beside the round-1 model on the same turns.

Run by ``python -m benchmarks.accuracy text --cross-corpus``. For each of the eight corpora in
``../shared/data/text`` in turn, a context attention and heads are trained over frozen sentence
embeddings of the other seven and scored on the test sample of the one left out (macro-F1 over
the emotions that corpus names, strict argmax over all seven). The recipe
(``recipes/text_multicorpus``) trains the heads, caches the embeddings and reuses its results
when they exist; the round-1 embeddings it reads are not made here: run
``python -m recipes.text_multicorpus.embed --encoders round1`` first (about 30 min on 2 cores;
without them the benchmark names the missing cache file). The round-1 model (text-minilm-meld@1) reads the same turns. For the dialogue
corpora the figures come with and without the earlier turns.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from affect.text.weights import TextWeights
from benchmarks._report import Report

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "text_multicorpus"


def key(corpus: str) -> str:
    return corpus.replace("-", "_")


def run_cross_corpus(args: argparse.Namespace) -> Report:
    from recipes.text_multicorpus.embed import DEFAULT_CACHE
    from recipes.text_multicorpus.heads import run_loco

    cfg = json.loads((RECIPE_DIR / "config.json").read_text())
    torch.set_num_threads(cfg["compare"]["torch_threads"])
    workdir = RECIPE_DIR / "checkpoints"
    report = cfg["loco_report"]
    chosen = run_loco(cfg, DEFAULT_CACHE, workdir, report["encoder"], report["balance"], variant=report.get("variant"))
    weight = float(TextWeights.DEFAULT.meta.get("context_weight", 1.0))

    def shipped(r: dict, name: str) -> float:
        """The figure as the default entry reports it: its context weight applied (dialogue corpora)."""
        return r.get(f"context_weight_{weight}_{name}", r[name])

    metrics: dict[str, float] = {}
    rows, weights_rows = [], []
    for corpus, r in chosen["corpora"].items():
        metrics[f"loco_{key(corpus)}_macro_f1"] = shipped(r, "macro_f1")
        metrics[f"round1_{key(corpus)}_macro_f1"] = r["round1_macro_f1"]
        ctx = full = ""
        if "no_context_macro_f1" in r:
            metrics[f"loco_{key(corpus)}_macro_f1_full_context"] = full = r["macro_f1"]
            metrics[f"loco_{key(corpus)}_macro_f1_no_context"] = r["no_context_macro_f1"]
            metrics[f"round1_{key(corpus)}_macro_f1_no_context"] = r["round1_no_context_macro_f1"]
            ctx = f"{r['no_context_macro_f1']:.3f} / {r['round1_no_context_macro_f1']:.3f}"
            for w in cfg["heads"].get("context_weights", []):
                if f"context_weight_{w}_macro_f1" in r:
                    weights_rows.append([corpus, w, r[f"context_weight_{w}_macro_f1"],
                                         r.get(f"context_weight_{w}_macro_f1_with_others", ""),
                                         r.get(f"context_weight_{w}_micro_f1_emotions", ""),
                                         r.get(f"context_weight_{w}_sentiment_macro_f1", "")])
        extra = ""
        if "micro_f1_emotions" in r:
            metrics[f"loco_{key(corpus)}_micro_f1_emotions"] = shipped(r, "micro_f1_emotions")
            metrics[f"round1_{key(corpus)}_micro_f1_emotions"] = r["round1_micro_f1_emotions"]
            extra = (f"4-class macro-F1 {shipped(r, 'macro_f1_with_others'):.3f} (round-1 {r['round1_macro_f1_with_others']:.3f}); "
                     f"micro-F1 happy/sad/angry {shipped(r, 'micro_f1_emotions'):.3f} (round-1 {r['round1_micro_f1_emotions']:.3f})")
        rows.append([corpus, r["n"], shipped(r, "macro_f1"), full, r["round1_macro_f1"], ctx, extra])
    metrics["loco_mean_macro_f1"] = sum(metrics[f"loco_{key(c)}_macro_f1"] for c in chosen["corpora"]) / len(chosen["corpora"])
    metrics["loco_mean_macro_f1_full_context"] = chosen["mean_macro_f1"]
    metrics["round1_mean_macro_f1"] = chosen["round1_mean_macro_f1"]

    compared = []
    adapted = cfg["adapt"]["encoder"]  # its layers were adapted on every corpus's train split
    for path in sorted(workdir.glob("loco-*.json")):
        res = json.loads(path.read_text())
        unseen = [c for c in res["corpora"] if c not in ("meld", "goemotions-ekman")]
        encoder = res["encoder"] + (" (encoder saw every corpus: heads held out only)" if res["encoder"] == adapted else "")
        dialogue = [f"{res['corpora'][c]['macro_f1']:.3f} / {res['corpora'][c]['no_context_macro_f1']:.3f}"
                    for c in ("meld", "emocontext")]
        compared.append([encoder, res["balance"], res.get("variant", "base"), res["mean_macro_f1"],
                         sum(res["corpora"][c]["macro_f1"] for c in unseen) / len(unseen)] + dialogue
                        + [res["corpora"][c]["macro_f1"] for c in cfg["corpora"]])
    tables = {
        "Leave-one-corpus-out (reported recipe) vs round-1 on the same turns": (
            ["held out", "turns scored", f"macro-F1 (context weight {weight})", "full context (weight 1)",
             "round-1 macro-F1", "no context: ours / round-1", "notes"], rows),
        "Held-out dialogue by context weight (the library's mix of the readings with and without past turns)": (
            ["held out", "context weight", "macro-F1", "4-class macro-F1 (with others)", "micro-F1 happy/sad/angry",
             "sentiment macro-F1"], weights_rows),
        "Every recipe compared (the choice rule is in the recipe config)": (
            ["encoder", "balance", "config variant", "mean macro-F1 (8)", "mean over the 6 unseen by round 1",
             "MELD with / without context", "EmoContext with / without context"] + list(cfg["corpora"]), compared),
    }
    notes = [
        f"Reported recipe: heads over frozen '{chosen['encoder']}' embeddings, sampling balance '{chosen['balance']}', "
        f"config variant '{chosen['variant']}'. Each LOCO head never saw the corpus it is scored on.",
        f"The loco_* keys are what the default text entry ({TextWeights.DEFAULT.value.id}) reports: on the dialogue corpora, "
        f"context weight {weight} x the reading with the past turns + the rest x the reading without "
        "(affect.text._network.mix_context); '_full_context' keys are the reading with the past turns alone.",
        "Config variants (recipes/text_multicorpus/config.json): 'pseudo_context*' give that share of the training turns "
        "of single-sentence corpora unrelated past turns of their own corpus (recipes.text_multicorpus.heads.PseudoContext), "
        "so that having context no longer tells the head which corpus a turn comes from.",
        "Round-1 (text-minilm-meld@1) was fine-tuned on MELD and GoEmotions train: its figures on those two corpora are "
        "in-domain, on the six others they are held out.",
        f"'{adapted}' (the encoder of text-minilm-multicorpus@3) had its top layers adapted on the train split of every "
        "corpus, so in its rows only the heads are held out: an optimistic figure, not a leave-one-corpus-out one.",
        "Scored on each corpus's test sample (at most 2,500 turns; single-label turns), strict argmax over all seven "
        "emotions. EmoContext and SemEval-2018 have no public test split here: their official dev split is the test.",
    ]
    return Report(task="text-cross-corpus", metrics=metrics, tables=tables,
                  models={"recipe": f"{chosen['encoder']} / {chosen['balance']} / {chosen['variant']}",
                          "round1": "text-minilm-meld@1"},
                  data={"corpora": ", ".join(cfg["corpora"])}, notes=notes)

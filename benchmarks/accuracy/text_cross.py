"""Text across corpora: leave-one-corpus-out macro-F1, beside the round-1 model on the same turns.

Run by ``python -m benchmarks.accuracy text --cross-corpus``. For each of the eight corpora in
``../shared/data/text`` in turn, a context attention and heads are trained over frozen sentence
embeddings of the other seven and scored on the test sample of the one left out (macro-F1 over
the emotions that corpus names, strict argmax over all seven). The recipe
(``recipes/text_multicorpus``) trains the heads, caches the embeddings and reuses its results
when they exist. The round-1 model (text-minilm-meld@1) reads the same turns. For the dialogue
corpora the figures come with and without the earlier turns.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

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
    metrics: dict[str, float] = {}
    rows = []
    for corpus, r in chosen["corpora"].items():
        metrics[f"loco_{key(corpus)}_macro_f1"] = r["macro_f1"]
        metrics[f"round1_{key(corpus)}_macro_f1"] = r["round1_macro_f1"]
        ctx = ""
        if "no_context_macro_f1" in r:
            metrics[f"loco_{key(corpus)}_macro_f1_no_context"] = r["no_context_macro_f1"]
            metrics[f"round1_{key(corpus)}_macro_f1_no_context"] = r["round1_no_context_macro_f1"]
            ctx = f"{r['no_context_macro_f1']:.3f} / {r['round1_no_context_macro_f1']:.3f}"
        extra = ""
        if "micro_f1_emotions" in r:
            metrics[f"loco_{key(corpus)}_micro_f1_emotions"] = r["micro_f1_emotions"]
            metrics[f"round1_{key(corpus)}_micro_f1_emotions"] = r["round1_micro_f1_emotions"]
            extra = (f"4-class macro-F1 {r['macro_f1_with_others']:.3f} (round-1 {r['round1_macro_f1_with_others']:.3f}); "
                     f"micro-F1 happy/sad/angry {r['micro_f1_emotions']:.3f} (round-1 {r['round1_micro_f1_emotions']:.3f})")
        rows.append([corpus, r["n"], r["macro_f1"], r["round1_macro_f1"], ctx, extra])
    metrics["loco_mean_macro_f1"] = chosen["mean_macro_f1"]
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
            ["held out", "turns scored", "macro-F1", "round-1 macro-F1", "no context: ours / round-1", "notes"], rows),
        "Every recipe compared (the choice rule is in the recipe config)": (
            ["encoder", "balance", "config variant", "mean macro-F1 (8)", "mean over the 6 unseen by round 1",
             "MELD with / without context", "EmoContext with / without context"] + list(cfg["corpora"]), compared),
    }
    notes = [
        f"Reported recipe: heads over frozen '{chosen['encoder']}' embeddings, sampling balance '{chosen['balance']}', "
        f"config variant '{chosen['variant']}'. Each LOCO head never saw the corpus it is scored on.",
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

"""Speech across corpora: leave-one-corpus-out UAR, beside the round-1 model on the same clips.

Run by ``python -m benchmarks.accuracy speech --cross-corpus --full-data DIR``. For each corpus
of the shipped recipe (RAVDESS, EmoDB, URDU and, since v10, EMOVO) in turn, a head is trained on
the others (their train speakers) and scored on every clip of the one left out, clean
and as a telephone call; the recipe (``recipes/speech_multicorpus``) does the training, caches
the encoder features and reuses its results when they exist. The round-1 head
(speech-whisper-tiny-ravdess@1) reads the same clips from the same cached Whisper tiny.en
features. Every figure comes with the share of the most frequent prediction: a model that
answers one class for most clips is broken whatever its UAR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from affect.labels import EMOTION_NAMES
from affect.speech._weights_io import load_speech_head
from affect.speech.weights import SpeechWeights
from benchmarks._report import Report, confusion_matrix_png, speaker_shares_png
from evaluation.answer_shares import speaker_max_shares

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "speech_multicorpus"
SHARE_BAR = 0.35  # issue 17: no evaluation with more than this share to one class


def run_cross_corpus(args: argparse.Namespace) -> Report:
    from recipes.speech_multicorpus.features import DEFAULT_CACHE
    from recipes.speech_multicorpus.train import held_out_scores, load_items, predict, run_loco

    if not args.full_data:
        raise SystemExit("--cross-corpus needs --full-data DIR (the folder build_datasets.sh filled) and the feature cache "
                         "of `python -m recipes.speech_multicorpus.features`")
    cfg = json.loads((RECIPE_DIR / "config.json").read_text())
    torch.set_num_threads(cfg["torch_threads"])
    workdir = RECIPE_DIR / "checkpoints"
    backbone, norm, variant = cfg["final"]["backbone"], cfg["final"]["feature_norm"], cfg["final"].get("variant")
    chosen = run_loco(cfg, DEFAULT_CACHE, workdir, backbone, norm, variant)
    corpora = tuple(chosen["corpora"])  # each corpus of the shipped recipe held out in turn (a variant may add one)

    r1_head, _ = load_speech_head(SpeechWeights.WHISPER_TINY_RAVDESS_V1.value.verified_path())
    tiny = load_items(DEFAULT_CACHE, "whisper-tiny.en", corpora, cfg["copies"])
    metrics: dict[str, float] = {}
    rows, answer_rows, plots, speaker_rows = [], [], [], []
    shares: dict[str, dict[str, dict[str, float]]] = {"shipped recipe, held out": {}, "round 1": {}}
    for corpus, ours in chosen["corpora"].items():
        held = tiny.select((tiny.corpora == corpus) & (tiny.variants <= 1))
        r1 = held_out_scores(r1_head, held)
        metrics[f"loco_{corpus}_uar"] = ours["uar_clean"]
        metrics[f"loco_{corpus}_telephone_uar"] = ours["uar_telephone"]
        metrics[f"max_predicted_share_loco_{corpus}"] = ours["max_predicted_share_clean"]
        metrics[f"max_predicted_share_loco_{corpus}_telephone"] = ours["max_predicted_share_telephone"]
        if "adapted" in ours:  # the same head with SpeechEncoder(adapt=True), clip after clip
            metrics[f"loco_{corpus}_uar_adapted"] = ours["adapted"]["uar_clean"]
            metrics[f"loco_{corpus}_telephone_uar_adapted"] = ours["adapted"]["uar_telephone"]
            metrics[f"max_predicted_share_loco_{corpus}_adapted"] = ours["adapted"]["max_predicted_share_clean"]
        metrics[f"round1_{corpus}_uar"] = r1["uar_clean"]
        metrics[f"round1_{corpus}_telephone_uar"] = r1["uar_telephone"]
        metrics[f"max_predicted_share_round1_{corpus}"] = r1["max_predicted_share_clean"]
        clean_held = held.select(held.variants == 0)
        # a speaker who has that share of one class in their own clips is not leaning (issue 17's "unless")
        true_share = speaker_max_shares(clean_held.labels, clean_held.speakers)
        for model, scores, key in (("shipped recipe, held out", ours, "loco"), ("round 1", r1, "round1")):
            by_speaker = scores.get("speaker_max_share_clean")  # runs cached before it was kept have none
            if by_speaker:
                shares[model][corpus] = by_speaker
                metrics[f"{key}_{corpus}_worst_speaker_share"] = max(by_speaker.values())
                leaning = [v > max(SHARE_BAR, true_share.get(spk, 0.0)) for spk, v in by_speaker.items()]
                metrics[f"{key}_{corpus}_speakers_leaning"] = sum(leaning)
                speaker_rows.append([corpus, model, len(by_speaker), float(np.mean(list(by_speaker.values()))),
                                     max(by_speaker.values()), sum(leaning),
                                     sum(v > SHARE_BAR for v in true_share.values())])
        rows.append([corpus, ours["clips_clean"], ours["uar_clean"], ours["uar_telephone"], ours["max_predicted_share_clean"],
                     r1["uar_clean"], r1["uar_telephone"], r1["max_predicted_share_clean"], ours["max_true_share_clean"]])
        for copy in ("clean", "telephone"):  # runs cached before answers_* were kept have none
            if f"answers_{copy}" in ours:
                answer_rows.append([corpus, copy, *ours[f"answers_{copy}"], ours[f"max_predicted_share_{copy}"]])
        clean = held.select(held.variants == 0)
        pred = predict(r1_head, clean.feats).argmax(-1).numpy()
        plots.append(str(confusion_matrix_png(clean.labels, pred, list(EMOTION_NAMES),
                                              Path(args.out_dir) / f"speech-round1-on-{corpus}.png",
                                              f"round-1 speech model on all of {corpus} (clean)")))
    metrics["loco_mean_uar"] = chosen["mean_uar_clean"]
    metrics["loco_mean_telephone_uar"] = chosen["mean_uar_telephone"]
    if "adapted_mean_uar_clean" in chosen:
        metrics["loco_mean_uar_adapted"] = chosen["adapted_mean_uar_clean"]
        metrics["loco_mean_telephone_uar_adapted"] = chosen["adapted_mean_uar_telephone"]
    metrics["round1_mean_uar"] = float(np.mean([metrics[f"round1_{c}_uar"] for c in chosen["corpora"]]))
    first = [c for c in cfg["corpora"] if c in chosen["corpora"]]  # the corpora every earlier recipe was compared on
    if len(first) < len(chosen["corpora"]):
        metrics["loco_mean_uar_" + "_".join(first)] = float(np.mean([metrics[f"loco_{c}_uar"] for c in first]))
        metrics["round1_mean_uar_" + "_".join(first)] = float(np.mean([metrics[f"round1_{c}_uar"] for c in first]))

    compared = []
    for path in sorted(workdir.glob("loco-*.json")):
        res = json.loads(path.read_text())
        if res.get("only"):  # one fold run apart (train loco --only): part of a joined result
            continue
        compared.append([res["backbone"], res["feature_norm"], res.get("variant", "base"), res["mean_uar_clean"], res["mean_uar_telephone"],
                         max(v["max_predicted_share_clean"] for v in res["corpora"].values()),
                         res.get("adapted_mean_uar_clean", "")]
                        + [res["corpora"][c]["uar_clean"] if c in res["corpora"] else "" for c in corpora])
    tables = {
        "Leave-one-corpus-out, shipped recipe vs round-1 on the same clips": (
            ["held out", "clips", "UAR", "telephone UAR", "max share", "round-1 UAR", "round-1 telephone",
             "round-1 max share", "largest class share"], rows),
        **({"Shipped recipe's answers on each held-out corpus (clips per predicted emotion)": (
            ["held out", "copy", *EMOTION_NAMES, "max share"], answer_rows)} if answer_rows else {}),
        **({"Top answer's share per speaker (clean, speakers with at least 20 clips): one voice read as one emotion": (
            ["corpus", "model", "speakers", "mean share", "worst share",
             f"speakers over {SHARE_BAR:.0%} and over their own largest class",
             f"speakers whose own largest class is over {SHARE_BAR:.0%}"], speaker_rows)}
           if speaker_rows else {}),
        "Every recipe compared (LOCO, clean; the choice rule is in the recipe config)": (
            ["encoder", "feature norm", "config variant", "mean UAR", "mean telephone UAR", "worst max share",
             "mean UAR adapting"] + list(corpora),
            compared),
    }
    notes = [
        f"Shipped recipe: {backbone} encoder ({chosen['compute_type']}), feature norm '{norm}', config variant "
        f"'{variant or 'base'}'. Each LOCO head never heard the corpus it is scored on; it is scored on every clip of that corpus.",
        "'adapting' (variants with corpus statistics): the same head reading the held-out corpus as SpeechEncoder(adapt=True) "
        "would, each copy (clean, telephone) as one deployment, clip after clip in a seeded order "
        "(affect.speech.adaptation); the plain figures are the default path, which reads every clip against the "
        "training corpora's pooled statistics.",
        "Round-1 (speech-whisper-tiny-ravdess@1) was trained on RAVDESS actors 1-20, so its RAVDESS figure here is "
        "not held out; its figures on the other corpora are.",
        "Strict scoring: argmax over all seven emotions, so a URDU clip read as fear is wrong; UAR over the classes the "
        "corpus has (EmoDB boredom counts as neutral, see affect.labels.LOSSY_CHOICES).",
    ]
    if speaker_rows:
        plots.append(str(speaker_shares_png(shares, Path(args.out_dir) / "speech-loco-speaker-shares.png",
                                            "top answer's share per speaker, clean clips", SHARE_BAR)))
    return Report(task="speech-cross-corpus", metrics=metrics, tables=tables,
                  models={"speech": f"recipe {backbone} / {norm}", "round1": SpeechWeights.WHISPER_TINY_RAVDESS_V1.value.id},
                  data={"corpora": ", ".join(corpora), "full data": str(args.full_data)}, notes=notes, plots=plots)

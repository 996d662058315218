"""Text: MELD test (with and without context), GoEmotions-Ekman test, VADER beside ours."""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from tqdm import tqdm

from affect.datasets import read_goemotions_ekman, read_meld
from affect.labels import EMOTION_NAMES, SENTIMENTS, corpus_emotions, emotion_index
from affect.text import TextEncoder
from affect.text.encoder import Readings
from affect.text.prior import DEFAULT_PRIOR
from benchmarks._report import Report, confusion_matrix_png, reliability_png
from evaluation.emocontext import OTHERS, macro_f1_with_others, micro_f1_emotions, with_others

from benchmarks.accuracy.text_cross import run_cross_corpus  # noqa: F401  (--cross-corpus)
from evaluation.calibration import expected_calibration_error

SENTIMENT_INDEX = {s: i for i, s in enumerate(SENTIMENTS)}


def vader_sentiment(texts: list[str]) -> np.ndarray:
    """VADER's label with its authors' thresholds: compound >= 0.05 positive, <= -0.05 negative."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        c = analyzer.polarity_scores(text)["compound"]
        out.append(SENTIMENT_INDEX[SENTIMENTS[2]] if c >= 0.05 else SENTIMENT_INDEX[SENTIMENTS[0]] if c <= -0.05 else 1)
    return np.array(out)


def _take_turns(dialogues: list, limit: int | None) -> list:
    if not limit:
        return dialogues
    out, n = [], 0
    for d in dialogues:
        if n >= limit:
            break
        out.append(d)
        n += len(d)
    return out


def prior_effect(encoder: TextEncoder, meld: Readings, meld_gold: np.ndarray, goemotions: Readings, go_gold: np.ndarray,
                 args: argparse.Namespace, metrics: dict[str, float]) -> list[list]:
    """The same calibrated readings re-weighted by each prior preset, on MELD, EmoContext and GoEmotions test."""
    from affect.datasets.text_corpora import read_text_corpus
    from affect.text.prior import PRIOR_PRESETS, shift_for

    emo_turns = read_text_corpus("emocontext", "test", args.data_root)
    if args.limit:
        emo_turns = emo_turns[: args.limit]
    dialogues = [[*t.context, (t.text, t.speaker)] for t in emo_turns]
    emocontext = encoder.read_dialogues(dialogues).last_turns([len(d) for d in dialogues])
    emo_gold = np.array([emotion_index(t.single) if t.single else OTHERS for t in emo_turns])
    rows = []
    three = [emotion_index(e) for e in corpus_emotions("emocontext")]
    seven = list(range(len(EMOTION_NAMES)))

    def seven_class_row(corpus: str, name: str, gold: np.ndarray, pred: np.ndarray) -> list:
        return [corpus, name, float(f1_score(gold, pred, average="macro", labels=seven, zero_division=0)),
                float(f1_score(gold, pred, average="weighted", labels=seven, zero_division=0)),
                float((pred == 0).mean()), float((gold == 0).mean())]

    for name in PRIOR_PRESETS:
        shift = shift_for(name, encoder.train_meta.get("train_prior"))
        meld_row = seven_class_row("MELD test", name, meld_gold, encoder.reported(meld, prior_shift=shift)[0].argmax(-1).numpy())
        epred = encoder.reported(emocontext, prior_shift=shift)[0].argmax(-1).numpy()
        e_macro, e_micro = macro_f1_with_others(emo_gold, epred, three), micro_f1_emotions(emo_gold, epred, three)
        go_row = seven_class_row("GoEmotions-Ekman test", name, go_gold,
                                 encoder.reported(goemotions, prior_shift=shift)[0].argmax(-1).numpy())
        rows += [meld_row, ["EmoContext test", name, e_macro, e_micro, float((with_others(epred, three) == OTHERS).mean()),
                            float((emo_gold == OTHERS).mean())], go_row]
        metrics[f"meld_test_macro_f1_prior_{name}"] = meld_row[2]
        metrics[f"goemotions_ekman_test_macro_f1_prior_{name}"] = go_row[2]
        metrics[f"emocontext_test_macro_f1_prior_{name}"] = e_macro
        metrics[f"emocontext_test_micro_f1_prior_{name}"] = e_micro
    return rows


def run(args: argparse.Namespace) -> Report:
    encoder = TextEncoder(weights=getattr(args, "text_weights", None))
    meld = _take_turns(read_meld("test", args.data_root), args.limit)
    goemo = read_goemotions_ekman("test", args.data_root)
    if args.limit:
        goemo = goemo[: args.limit]
    pairs = [[(t.text, t.speaker) for t in d] for d in meld]
    turns = [t for d in meld for t in d]
    gold = np.array([emotion_index(t.emotion) for t in turns])
    gold_sent = np.array([SENTIMENT_INDEX[t.sentiment] for t in turns])

    bar = tqdm(total=len(turns) + len(goemo), desc="text benchmark", unit="turn", disable=args.no_progress)
    meld_readings = encoder.read_dialogues(pairs, on_batch=bar.update)  # with and without context, one pass
    probs, sent_pred = {}, {}
    for name, weight in (("context", None), ("no_context", 0.0)):  # None: the entry's own context weight
        emo, sent = encoder.reported(meld_readings, context_weight=weight)
        probs[name] = torch.softmax(emo, -1).numpy()
        sent_pred[name] = sent.argmax(-1).numpy()
    go_readings = encoder.read_dialogues([[(e.text, None)] for e in goemo], on_batch=bar.update)
    go_emo, _ = encoder.reported(go_readings)
    bar.close()
    go_gold = np.array([emotion_index(e.emotion) for e in goemo])
    go_pred = go_emo.argmax(-1).numpy()
    vader = vader_sentiment([t.text for t in turns])

    labels = list(range(len(EMOTION_NAMES)))
    pred = probs["context"].argmax(1)
    pred_nc = probs["no_context"].argmax(1)
    metrics = {
        "meld_test_weighted_f1": float(f1_score(gold, pred, average="weighted", labels=labels, zero_division=0)),
        "meld_test_weighted_f1_no_context": float(f1_score(gold, pred_nc, average="weighted", labels=labels, zero_division=0)),
        "meld_test_accuracy": float(accuracy_score(gold, pred)),
        "meld_test_sentiment_macro_f1": float(f1_score(gold_sent, sent_pred["context"], average="macro", zero_division=0)),
        "vader_meld_test_sentiment_macro_f1": float(f1_score(gold_sent, vader, average="macro", zero_division=0)),
        "goemotions_ekman_test_macro_f1": float(f1_score(go_gold, go_pred, average="macro", labels=labels, zero_division=0)),
    }
    extra = {
        "meld_test_accuracy_no_context": float(accuracy_score(gold, pred_nc)),
        "meld_test_sentiment_macro_f1_no_context": float(f1_score(gold_sent, sent_pred["no_context"], average="macro", zero_division=0)),
        "meld_test_ece": expected_calibration_error(probs["context"], gold),
    }
    prior_rows = prior_effect(encoder, meld_readings, gold, go_readings, go_gold, args, metrics)
    per_class = f1_score(gold, pred, average=None, labels=labels, zero_division=0)
    per_class_nc = f1_score(gold, pred_nc, average=None, labels=labels, zero_division=0)
    support = np.bincount(gold, minlength=len(labels))
    stem = f"text{getattr(args, 'entry_suffix', '')}-meld-test"
    plots = [
        confusion_matrix_png(gold, pred, EMOTION_NAMES, args.out_dir / f"{stem}-confusion.png",
                             f"MELD test, {encoder.model_id} with context"),
        reliability_png({"MELD test": (probs["context"], gold)}, args.out_dir / f"{stem}-reliability.png",
                        f"Text encoder reliability (MELD test, {encoder.model_id})"),
    ]
    return Report(
        task="text",
        metrics=metrics,
        tables={
            "Headline": (["measure", "affect text", "no context", "baseline"], [
                ["MELD test weighted-F1 (7 emotions)", metrics["meld_test_weighted_f1"], metrics["meld_test_weighted_f1_no_context"], ""],
                ["MELD test accuracy", metrics["meld_test_accuracy"], extra["meld_test_accuracy_no_context"], ""],
                ["MELD test sentiment macro-F1", metrics["meld_test_sentiment_macro_f1"],
                 extra["meld_test_sentiment_macro_f1_no_context"], f"VADER {metrics['vader_meld_test_sentiment_macro_f1']:.3f}"],
                ["GoEmotions-Ekman test macro-F1 (single-label)", metrics["goemotions_ekman_test_macro_f1"], "", ""],
            ]),
            "The expected label prior (Analyzer(text_prior=...)), same weights, same run": (
                ["corpus", "prior", "macro-F1", "weighted-F1 (EmoContext: micro-F1, happy/sad/angry)", "share read as neutral (EmoContext: as others)",
                 "true share"], prior_rows),
            "MELD test F1 per emotion": (["emotion", "support", "F1 with context", "F1 without"], [
                [name, int(support[i]), float(per_class[i]), float(per_class_nc[i])] for i, name in enumerate(EMOTION_NAMES)
            ]),
        },
        models={"text": encoder.model_id, "sha256": encoder.weights.value.sha256, "context_weight": encoder.context_weight,
                "text_prior": DEFAULT_PRIOR, "dev_metrics": encoder.train_meta.get("dev_metrics")},
        data={
            "MELD test": f"{len(turns)} turns in {len(meld)} dialogues",
            "GoEmotions-Ekman test": f"{len(goemo)} single-label comments (multi-label ones left out)",
            "data root": str(args.data_root or "default (../shared/data)"),
        },
        notes=[
            "Context = up to 8 earlier turns of the same dialogue, past turns only; 'no context' is the same weights with the context masked. "
            "With context, the library reports context_weight x the reading with the past turns + the rest x the reading without (affect.text._network.mix_context).",
            "MELD test was read once for this report; the weights were chosen on MELD dev.",
            *([f"--limit {args.limit}: a partial run, not the reported figures."] if args.limit else []),
        ],
        plots=[str(p) for p in plots],
        extra=extra,
    )

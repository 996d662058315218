"""Speech: RAVDESS actors 23-24 (never trained or chosen on), clean and as 8 kHz telephone calls,
with the MFCC + logistic-regression baseline trained on actors 1-20 in the same run.

The telephone-band copy of each test clip is made here (8 kHz, 300-3400 Hz, mu-law) and handed
to the encoder at 8 kHz, the way a phone line delivers it. UAR is the unweighted mean of the
per-class recalls over the classes present; each figure comes with a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from affect.datasets import DatasetNotFoundError, default_data_root
from affect.datasets.ravdess import TEST_ACTORS, TRAIN_ACTORS, full_clips, read_test_slice
from affect.datasets.speech import SPEECH_CORPORA, read_speech_corpus
from affect.labels import EMOTION_NAMES, corpus_emotions, emotion_index
from affect.speech import SpeechEncoder, SpeechWeights
from affect.speech._audio import MODEL_RATE, prepare_array, prepare_file
from affect.speech.augment import PHONE_RATE, telephone_band
from benchmarks._report import Report, bootstrap_ci, confusion_matrix_png
from benchmarks.accuracy.speech_cross import run_cross_corpus  # noqa: F401  (--cross-corpus)
from evaluation.answer_shares import answer_counts, largest_class_share, max_predicted_share, speaker_max_shares
from evaluation.calibration import expected_calibration_error
from evaluation.recall import accuracy, uar
from evaluation.speech_answers import NO_ANSWER, prediction


def _with_ci(metrics: dict[str, float], key: str, metric, gold: np.ndarray, pred: np.ndarray) -> None:
    metrics[key] = metric(gold, pred)
    lo, hi = bootstrap_ci(metric, gold, pred)
    metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = lo, hi


def _adapted_uar(metrics: dict[str, float], key: str, gold: np.ndarray, inputs: list, progress: bool,
                 weights: SpeechWeights | str | None = None) -> None:
    """The test set heard as one deployment by ``SpeechEncoder(adapt=True)``, clip after clip in
    the set's order (``affect.speech.adaptation``): ``<key>_uar_adapted`` and its top class's share."""
    encoder = SpeechEncoder(weights=weights, adapt=True)
    pred = np.array([prediction(encoder.analyze(*x))[0] for x in tqdm(inputs, desc=f"{key} adapting", disable=not progress)])
    metrics[f"{key}_uar_adapted"] = uar(gold, pred)
    metrics[f"max_predicted_share_{key}_adapted"] = max_predicted_share(pred)


def run(args: argparse.Namespace) -> Report:
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    clips = read_test_slice(data_root)
    if args.limit:
        clips = clips[: args.limit]
    gold = np.array([emotion_index(c.emotion) for c in clips])
    encoder = SpeechEncoder(weights=getattr(args, "speech_weights", None))

    bar = tqdm(total=2 * len(clips), desc="speech benchmark", unit="clip", disable=args.no_progress)
    pred, probs, pred_tel, no_speech, no_speech_tel = [], [], [], 0, 0
    clean_audio, phone_audio = [], []
    seconds, busy = 0.0, 0.0
    for clip in clips:
        audio = prepare_file(clip.path).samples
        phone = telephone_band(audio, back_to_rate=False)  # what an 8 kHz call delivers
        clean_audio.append(audio)
        phone_audio.append(prepare_array(phone, PHONE_RATE).samples)
        t0 = time.process_time()  # CPU time of this process (every thread), not wall time: another job beside does not count
        answer = encoder.analyze(clip.path)
        busy += time.process_time() - t0
        seconds += answer.duration
        p, pr = prediction(answer)
        pred.append(p)
        probs.append(pr)
        no_speech += answer.result is None
        bar.update()
        answer = encoder.analyze(phone, sample_rate=PHONE_RATE)
        pred_tel.append(prediction(answer)[0])
        no_speech_tel += answer.result is None
        bar.update()
    bar.close()
    pred, pred_tel, probs = np.array(pred), np.array(pred_tel), np.stack(probs)

    metrics: dict[str, float] = {}
    _with_ci(metrics, "ravdess_test_uar", uar, gold, pred)
    _with_ci(metrics, "ravdess_test_accuracy", accuracy, gold, pred)
    _with_ci(metrics, "ravdess_test_telephone_uar", uar, gold, pred_tel)
    _with_ci(metrics, "ravdess_test_telephone_accuracy", accuracy, gold, pred_tel)
    metrics["ravdess_test_ece"] = expected_calibration_error(probs, gold)
    metrics["max_predicted_share_ravdess_test"] = max_predicted_share(pred)
    metrics["max_predicted_share_ravdess_test_telephone"] = max_predicted_share(pred_tel)
    metrics["speech_cpu_seconds_per_audio_second"] = busy / max(seconds, 1e-9)
    adapts = encoder.head.standardise is not None
    if adapts:
        _adapted_uar(metrics, "ravdess_test", gold, [(a, MODEL_RATE) for a in clean_audio], not args.no_progress, encoder.weights)
        _adapted_uar(metrics, "ravdess_test_telephone", gold, [(a, MODEL_RATE) for a in phone_audio], not args.no_progress, encoder.weights)

    notes = [
        "Test: RAVDESS actors 23-24 (120 clips, 16 kHz FLAC of the shared data folder); the model was "
        "trained on actors 1-20 and chosen on 21-22. 'calm' is scored as neutral.",
        "Telephone band: each test clip resampled to 8 kHz, band-passed to 300-3400 Hz and mu-law coded, "
        "then given to the encoder at 8 kHz.",
        f"Clips where the VAD found no speech (counted wrong): {no_speech} clean, {no_speech_tel} telephone.",
        "95% intervals: percentile bootstrap over the test clips (1000 resamples). Two speakers only: "
        "the intervals do not cover speaker-to-speaker variation.",
        f"speech_cpu_seconds_per_audio_second: CPU time of this process (time.process_time, torch with {torch.get_num_threads()} "
        "threads) in SpeechEncoder.analyze of each clean RAVDESS test file (decoding, VAD, encoder, head), over the audio's "
        "seconds. Reports before 2026-12-06 timed wall time, which another job running beside inflates.",
    ]
    if adapts:
        notes.append("'_adapted' figures: each test set (RAVDESS clean, RAVDESS telephone, EmoDB, URDU, EMOVO) heard as one "
                     "deployment by a fresh SpeechEncoder(adapt=True), clip after clip in the set's order; the plain "
                     "figures are the default path (every clip read against the training statistics).")
    tables: dict[str, tuple[list[str], list[list]]] = {}
    rows = [[f"ours ({encoder.backbone.spec.key} encoder + head)", metrics["ravdess_test_uar"],
             f"{metrics['ravdess_test_uar_ci_low']:.3f}-{metrics['ravdess_test_uar_ci_high']:.3f}",
             metrics["ravdess_test_telephone_uar"],
             f"{metrics['ravdess_test_telephone_uar_ci_low']:.3f}-{metrics['ravdess_test_telephone_uar_ci_high']:.3f}",
             metrics["ravdess_test_accuracy"]]]

    if args.full_data:
        from benchmarks.baselines.speech_mfcc import MfccBaseline, features_of

        train = full_clips(Path(args.full_data), TRAIN_ACTORS)
        bar = tqdm(total=len(train) + 2 * len(clips), desc="MFCC baseline", unit="clip", disable=args.no_progress)
        train_x = features_of([prepare_file(c.path).samples for c in train], bar.update)
        baseline = MfccBaseline().fit(train_x, [c.actor for c in train], [emotion_index(c.emotion) for c in train])
        actors = [c.actor for c in clips]
        base_pred = baseline.predict(features_of(clean_audio, bar.update), actors)
        base_tel = baseline.predict(features_of(phone_audio, bar.update), actors)
        bar.close()
        _with_ci(metrics, "baseline_ravdess_test_uar", uar, gold, base_pred)
        _with_ci(metrics, "baseline_ravdess_test_telephone_uar", uar, gold, base_tel)
        metrics["baseline_ravdess_test_accuracy"] = accuracy(gold, base_pred)
        rows.append(["baseline (MFCC+deltas, pitch/energy, per-speaker z-score, logistic regression)",
                     metrics["baseline_ravdess_test_uar"],
                     f"{metrics['baseline_ravdess_test_uar_ci_low']:.3f}-{metrics['baseline_ravdess_test_uar_ci_high']:.3f}",
                     metrics["baseline_ravdess_test_telephone_uar"],
                     f"{metrics['baseline_ravdess_test_telephone_uar_ci_low']:.3f}-"
                     f"{metrics['baseline_ravdess_test_telephone_uar_ci_high']:.3f}",
                     metrics["baseline_ravdess_test_accuracy"]])
        notes.append(f"Baseline trained on {len(train)} clips of actors 1-20 from {args.full_data} in this run.")
    else:
        notes.append("Baseline skipped: it needs the training actors; pass --full-data DIR (the folder build_datasets.sh filled).")

    if args.full_data:
        other_rows, answer_rows, speaker_rows = [], [], []
        for corpus in (c for c in SPEECH_CORPORA if c != "ravdess"):  # RAVDESS's test actors are read above
            try:
                test = read_speech_corpus(corpus, Path(args.full_data), "test")
            except DatasetNotFoundError as exc:  # a corpus not built here (the message names its builder)
                notes.append(f"{corpus} test speakers skipped: {exc}")
                continue
            if args.limit:
                test = test[: args.limit]
            gold_c = np.array([emotion_index(c.emotion) for c in test])
            audio_c = [prepare_file(c.path).samples for c in test]  # decoded once for both paths
            pred_c = np.array([prediction(encoder.analyze(a, MODEL_RATE))[0]
                               for a in tqdm(audio_c, desc=corpus, disable=args.no_progress)])
            _with_ci(metrics, f"{corpus}_test_uar", uar, gold_c, pred_c)
            metrics[f"max_predicted_share_{corpus}_test"] = max_predicted_share(pred_c)
            metrics[f"max_true_share_{corpus}_test"] = largest_class_share(gold_c)
            if adapts:
                _adapted_uar(metrics, f"{corpus}_test", gold_c, [(a, MODEL_RATE) for a in audio_c], not args.no_progress, encoder.weights)
            answer_rows.append([f"{corpus} (true labels)", *answer_counts(gold_c, len(EMOTION_NAMES)), 0])
            answer_rows.append([corpus, *answer_counts(pred_c, len(EMOTION_NAMES)),
                                int(((pred_c != NO_ANSWER) & ~np.isin(pred_c, [emotion_index(e) for e in corpus_emotions(corpus)])).sum())])
            speaker_of = np.array([c.speaker for c in test])
            speakers = sorted(set(speaker_of))
            shares, true_shares = speaker_max_shares(pred_c, speaker_of), speaker_max_shares(gold_c, speaker_of)
            if shares:
                metrics[f"max_predicted_share_{corpus}_test_worst_speaker"] = max(shares.values())
            speaker_rows += [[corpus, speaker, int((speaker_of == speaker).sum()), share, true_shares[speaker]]
                             for speaker, share in shares.items()]
            other_rows.append([corpus, ", ".join(speakers), len(test), metrics[f"{corpus}_test_uar"],
                               f"{metrics[f'{corpus}_test_uar_ci_low']:.3f}-{metrics[f'{corpus}_test_uar_ci_high']:.3f}",
                               metrics[f"max_predicted_share_{corpus}_test"], metrics[f"max_true_share_{corpus}_test"]])
        tables["Test speakers of the other corpora (never trained or chosen on)"] = (
            ["corpus", "speakers", "clips", "UAR", "95% CI", "max predicted share", "largest class's share of the clips"],
            other_rows)
        tables["Answers on the other corpora's test speakers (clips per predicted emotion)"] = (
            ["corpus", *EMOTION_NAMES, "labels the corpus lacks"], answer_rows)
        tables["Top answer's share per test speaker (speakers with at least 20 clips): one voice read as one emotion"] = (
            ["corpus", "speaker", "clips", "share of the top answer", "their largest class's share of their clips"], speaker_rows)

    tables["RAVDESS actors 23-24: model and baseline"] = (
        ["model", "UAR", "UAR 95% CI", "telephone UAR", "telephone 95% CI", "accuracy"], rows)
    recall_rows = []
    for c, name in enumerate(EMOTION_NAMES):
        sel = gold == c
        if sel.any():
            recall_rows.append([name, int(sel.sum()), float((pred[sel] == c).mean()), float((pred_tel[sel] == c).mean())])
    tables["Recall per emotion"] = (["emotion", "clips", "recall", "telephone recall"], recall_rows)
    actor_rows = []
    for actor in TEST_ACTORS:
        sel = np.array([c.actor == actor for c in clips])
        if sel.any():
            actor_rows.append([f"{actor} ({'female' if actor % 2 == 0 else 'male'})", int(sel.sum()),
                               uar(gold[sel], pred[sel]), uar(gold[sel], pred_tel[sel]), max_predicted_share(pred[sel]),
                               largest_class_share(gold[sel])])
    tables["UAR per test actor"] = (["actor", "clips", "UAR", "telephone UAR", "share of the top answer",
                                     "largest class's share of the clips"], actor_rows)

    out_dir = Path(args.out_dir)
    plots = []
    stem = f"speech{getattr(args, 'entry_suffix', '')}-confusion"
    for key, values, title in ((stem, pred, "clean"), (f"{stem}-telephone", pred_tel, "telephone band")):
        keep = values != NO_ANSWER
        path = confusion_matrix_png(gold[keep], values[keep], list(EMOTION_NAMES), out_dir / f"{key}.png",
                                    f"speech, RAVDESS actors 23-24, {title}")
        plots.append(str(path))

    weights = encoder.weights
    return Report(
        task="speech",
        metrics=metrics,
        tables=tables,
        models={"speech": f"{encoder.model_id} ({weights.meta['base']})", "vad": weights.meta["vad"]},
        data={"test": f"{data_root / 'speech' / 'ravdess-test-slice'} ({len(clips)} clips)",
              "audio seconds scored (clean)": round(seconds, 1)},
        notes=notes,
        plots=plots,
    )

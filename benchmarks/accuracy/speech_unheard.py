"""Speech on voices no entry heard: TESS, read whole by the default, two earlier entries and round 1.

Run by ``python -m benchmarks.accuracy speech --unheard-voices --full-data DIR``, DIR being where
``recipes/speech_multicorpus/build_tess.sh`` put TESS (two female English speakers of Toronto,
seven emotions, 200 words each in one carrier phrase). No entry trained on TESS and nothing is
chosen on it (the rule ``tess_rule`` in ``recipes/speech_multicorpus/config.json``): it is the
issue's own test, acted emotional speech from other speakers recorded elsewhere. Each clip is
read as a user's file would be (``SpeechEncoder.analyze`` of the decoded audio), clean and as
an 8 kHz telephone call; files the library refuses (its contract: WAV, FLAC or OGG at 8-48 kHz)
are named and left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from affect import InvalidInputError
from affect.datasets.speech import read_speech_corpus
from affect.labels import EMOTION_NAMES, emotion_index
from affect.speech import SpeechEncoder, SpeechWeights
from affect.speech._audio import MODEL_RATE, prepare_file
from affect.speech.augment import PHONE_RATE, telephone_band
from benchmarks._report import Report, bootstrap_ci, confusion_matrix_png
from evaluation.answer_shares import answer_counts, max_predicted_share, speaker_max_shares
from evaluation.recall import accuracy, uar
from evaluation.speech_answers import NO_ANSWER, prediction

ENTRIES = (SpeechWeights.DEFAULT, SpeechWeights.WHISPER_TINY_LAYERS_MULTICORPUS_V10,
           SpeechWeights.WHISPER_TINY_LAYERS_MULTICORPUS_V9, SpeechWeights.WHISPER_TINY_RAVDESS_V1)


def _tag(weights: SpeechWeights) -> str:
    return "default" if weights is SpeechWeights.DEFAULT else weights.name.lower()


def run_unheard_voices(args: argparse.Namespace) -> Report:
    if args.full_data is None:
        raise SystemExit("speech --unheard-voices needs --full-data DIR (where build_tess.sh put tess/)")
    clips = read_speech_corpus("tess", Path(args.full_data), "test")
    if args.limit:
        clips = clips[:: max(1, len(clips) // args.limit)][: args.limit]
    clean, phone, kept, refused = [], [], [], []
    for clip in clips:
        try:
            audio = prepare_file(clip.path).samples
        except InvalidInputError as exc:  # as a user sending this file would be told
            refused.append(f"{clip.path.parent.name}/{clip.path.name}: {exc}")
            continue
        clean.append(audio)
        phone.append(telephone_band(audio, back_to_rate=False))  # what an 8 kHz call delivers, handed over at 8 kHz
        kept.append(clip)
    gold = np.array([emotion_index(c.emotion) for c in kept])
    speakers = np.array([c.speaker for c in kept])
    metrics: dict[str, float] = {"tess_clips": float(len(kept)), "tess_refused_files": float(len(refused))}
    rows, answer_rows, speaker_rows, models = [], [], [], {}
    answer_rows.append(["true labels", "", *answer_counts(gold, len(EMOTION_NAMES)), 0])
    default_pred = None
    with tqdm(total=2 * len(kept) * len(ENTRIES), desc="TESS", unit="clip", disable=args.no_progress) as bar:
        for weights in ENTRIES:
            encoder = SpeechEncoder(weights=weights)
            models[weights.name] = encoder.model_id
            tag = _tag(weights)
            for reading, audios, rate in (("clean", clean, MODEL_RATE), ("telephone", phone, PHONE_RATE)):
                pred = []
                for audio in audios:
                    pred.append(prediction(encoder.analyze(audio, rate))[0])
                    bar.update()
                pred = np.array(pred)
                key = f"tess_{tag}" + ("" if reading == "clean" else "_telephone")
                metrics[f"{key}_uar"] = uar(gold, pred)
                metrics[f"{key}_uar_ci_low"], metrics[f"{key}_uar_ci_high"] = bootstrap_ci(uar, gold, pred)
                metrics[f"{key}_accuracy"] = accuracy(gold, pred)
                metrics[f"max_predicted_share_{key}"] = max_predicted_share(pred)
                no_speech = int((pred == NO_ANSWER).sum())
                metrics[f"{key}_no_speech"] = float(no_speech)
                shares = speaker_max_shares(pred, speakers)
                for speaker, share in shares.items():
                    metrics[f"max_predicted_share_{key}_{speaker.lower()}"] = share
                rows.append([encoder.model_id + (" (default)" if tag == "default" else ""), reading, metrics[f"{key}_uar"],
                             f"{metrics[f'{key}_uar_ci_low']:.3f}-{metrics[f'{key}_uar_ci_high']:.3f}", metrics[f"{key}_accuracy"],
                             metrics[f"max_predicted_share_{key}"], ", ".join(f"{s} {v:.2f}" for s, v in shares.items())])
                answer_rows.append([encoder.model_id, reading, *answer_counts(pred, len(EMOTION_NAMES)), no_speech])
                if tag == "default":
                    for speaker in sorted(set(speakers)):
                        mine = speakers == speaker
                        speaker_rows.append([speaker, reading, int(mine.sum()), uar(gold[mine], pred[mine]),
                                             max_predicted_share(pred[mine])])
                    if reading == "clean":
                        default_pred = pred
    assert default_pred is not None
    plot = confusion_matrix_png(gold, np.where(default_pred == NO_ANSWER, emotion_index("neutral"), default_pred), EMOTION_NAMES,
                                args.out_dir / "speech-tess-confusion.png",
                                f"TESS (voices never heard), {models[SpeechWeights.DEFAULT.name]}, clean")
    header = ["entry", "reading", "UAR (7)", "95% CI", "accuracy", "top answer's share", "top answer's share per speaker"]
    return Report(
        task="speech-tess",
        metrics=metrics,
        tables={
            "Every entry on TESS (no entry heard these voices; every emotion is 1/7 of the clips)": (header, rows),
            "The default per speaker": (["speaker", "reading", "clips", "UAR", "top answer's share"], speaker_rows),
            "Answers (clips per predicted emotion; 'no speech': the VAD found none)": (
                ["entry", "reading", *EMOTION_NAMES, "no speech"], answer_rows),
        },
        models=models,
        data={
            "TESS": f"{len(kept)} clips of 2 speakers (OAF, YAF), 1/7 per emotion; 'pleasant surprise' read as surprise; "
                    "CC BY-NC-ND 4.0, built by recipes/speech_multicorpus/build_tess.sh",
            "telephone": "each clip band-limited to 300-3400 Hz, mu-law, handed over at 8 kHz (benchmarks.accuracy speech's copy)",
        },
        notes=[
            "No entry trained on TESS and nothing was chosen on it (recipes/speech_multicorpus/config.json, tess_rule).",
            "A clip where the VAD found no speech is counted as a wrong answer.",
            *(f"Refused by the library, left out: {r}" for r in refused),
            *([f"--limit {args.limit}: a partial run, not the reported figures."] if args.limit else []),
        ],
        plots=[str(plot)],
    )

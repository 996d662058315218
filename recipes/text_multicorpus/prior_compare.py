"""The expected-prior presets compared at real chat traffic's label shares, on dev splits only.

    python -m recipes.text_multicorpus.prior_compare [--weights MINILM_MULTICORPUS_V5] [--streams 20]

The rule that used it is ``prior_default_rule`` in ``config.json`` (its read: ``prior_default_read``).
EmoContext's dev chats (cut from its training file: about half "others") are drawn as seeded
deployment streams at the shares the organisers give real chatbot traffic (88% "others", 4% each of
happy, sad, angry; with replacement), each read in its own order, and scored by the shared task's
micro-F1 over the three emotions; MELD dev is read whole, in dialogue order (weighted-F1, its
natural 47% neutral). Besides the presets of ``affect.text.prior``, "adaptive" estimates the
deployment's own prior online from the turns read so far: a running EM (Saerens, Latinne and
Decaestecker 2002) that starts at the training prior with a pseudo-count of ``PSEUDO_TURNS``. It
lives here, not in the library: it was compared and not adopted (the text model card).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import f1_score

from affect.datasets import read_meld
from affect.datasets.text_corpora import read_text_corpus
from affect.labels import EMOTION_NAMES, corpus_emotions, emotion_index
from affect.text import TextEncoder
from affect.text.encoder import Readings
from affect.text.prior import PRIOR_PRESETS, prior_log_ratio, resolve_prior
from evaluation.emocontext import OTHERS, micro_f1_emotions, with_others

CHAT_SHARES = {"others": 0.88, "each emotion": 0.04}  # the organisers' real-traffic shares (SemEval-2019 Task 3)
STREAM_CHATS = 1000
PSEUDO_TURNS = 100.0
ALL = list(range(len(EMOTION_NAMES)))


def read_fixed(encoder: TextEncoder, trained: torch.Tensor, name: str) -> Callable[[Readings, np.ndarray], np.ndarray]:
    shift = prior_log_ratio(resolve_prior(name), trained)
    return lambda readings, order: encoder.reported(readings.rows(torch.from_numpy(order)), prior_shift=shift)[0].argmax(-1).numpy()


def read_adaptive(encoder: TextEncoder, trained: torch.Tensor) -> Callable[[Readings, np.ndarray], np.ndarray]:
    """Each turn read under the prior estimated from the turns before it, then added to the estimate."""
    def read(readings: Readings, order: np.ndarray) -> np.ndarray:
        estimate, weight, answers = trained.clone(), PSEUDO_TURNS, []
        for i in order:
            emotion = encoder.reported(readings.rows(torch.tensor([int(i)])), prior_shift=prior_log_ratio(estimate, trained))[0][0]
            answers.append(int(emotion.argmax()))
            estimate = (weight * estimate + emotion.exp()) / (weight + 1)
            weight += 1
        return np.array(answers)

    return read


def chat_streams(gold: np.ndarray, emotions: list[int], streams: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    others = np.flatnonzero(gold == OTHERS)
    per_emotion = round(STREAM_CHATS * CHAT_SHARES["each emotion"])
    out = []
    for _ in range(streams):
        drawn = [rng.choice(others, STREAM_CHATS - per_emotion * len(emotions))]
        drawn += [rng.choice(np.flatnonzero(gold == k), per_emotion) for k in emotions]
        out.append(rng.permutation(np.concatenate(drawn)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="MINILM_MULTICORPUS_V5")
    ap.add_argument("--streams", type=int, default=20)
    args = ap.parse_args(argv)
    encoder = TextEncoder(weights=args.weights)
    trained = torch.tensor(encoder.train_meta["train_prior"])
    meld = read_meld("dev")
    meld_readings = encoder.read_dialogues([[(t.text, t.speaker) for t in d] for d in meld])
    meld_gold = np.array([emotion_index(t.emotion) for d in meld for t in d])
    chats = read_text_corpus("emocontext", "dev")
    chat_readings = encoder.read_dialogues([[*t.context, (t.text, t.speaker)] for t in chats]).last_turns(
        [len(t.context) + 1 for t in chats])
    chat_gold = np.array([emotion_index(t.single) if t.single else OTHERS for t in chats])
    three = [emotion_index(e) for e in corpus_emotions("emocontext")]
    streams = chat_streams(chat_gold, three, args.streams)
    readers = {name: read_fixed(encoder, trained, name) for name in PRIOR_PRESETS} | {"adaptive": read_adaptive(encoder, trained)}
    print("| prior | MELD dev weighted-F1 (read as neutral) | chats micro-F1 (sd; read as others) | mean |\n|---|---|---|---|")
    for name, read in readers.items():
        answers = read(meld_readings, np.arange(len(meld_gold)))
        meld_f1 = f1_score(meld_gold, answers, average="weighted", labels=ALL, zero_division=0)
        micro, as_others = [], []
        for order in streams:
            answer = read(chat_readings, order)
            micro.append(micro_f1_emotions(chat_gold[order], answer, three))
            as_others.append(float((with_others(answer, three) == OTHERS).mean()))
        print(f"| {name} | {meld_f1:.4f} ({(answers == 0).mean():.3f}) | {np.mean(micro):.4f} ({np.std(micro):.4f}; "
              f"{np.mean(as_others):.3f}) | {(meld_f1 + np.mean(micro)) / 2:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

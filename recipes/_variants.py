"""Named config variants: a recipe's ``config.json`` lists them under ``variants``."""

from __future__ import annotations

import json


def with_variant(cfg: dict, variant: str | None) -> dict:
    """A copy of the config with one of its named ``variants`` applied (its dicts merged one level deep)."""
    out = json.loads(json.dumps(cfg))
    if variant:
        for key, value in cfg["variants"][variant].items():
            out[key] = out[key] | value if isinstance(value, dict) else value
    return out

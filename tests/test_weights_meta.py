"""Every shipped weights file: one meta schema, an intact file, and a size that ships."""

import hashlib

import pytest

from affect._weights import REQUIRED_META_KEYS, licence_parts
from affect.forecast import OUTPUTS
from affect.labels import EMOTION_NAMES
from affect.registry import WEIGHT_FAMILIES

SIZE_LIMIT_MB = {"text": 25, "face": 15, "speech": 15, "fusion": 5, "forecast": 1}
CATEGORIES = {"forecast": list(OUTPUTS)}  # what it forecasts; every other family reads the seven emotions
MEMBERS = [(family.__name__, name, member) for family in WEIGHT_FAMILIES for name, member in family.__members__.items()]


@pytest.mark.parametrize("family, name, member", MEMBERS, ids=[f"{f}.{n}" for f, n, _ in MEMBERS])
def test_weights_meta_schema_and_file(family, name, member):
    meta = member.meta
    assert set(REQUIRED_META_KEYS) <= set(meta), set(REQUIRED_META_KEYS) - set(meta)
    assert list(meta["categories"]) == CATEGORIES.get(meta["modality"], list(EMOTION_NAMES))
    assert meta["num_params"] > 0
    assert meta["metrics"], "measured metrics belong in the meta"
    terms, data = licence_parts(meta["licence"])  # the use allowed first, as `affect models` and `affect serve` show it
    assert terms.endswith("use only") and data, meta["licence"]  # every shipped entry's data limits its use
    assert all(isinstance(v, (int, float)) for v in meta["metrics"].values())
    path = member.value.path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == member.value.sha256
    assert path.stat().st_size < SIZE_LIMIT_MB[meta["modality"]] * 1e6


def test_every_family_names_a_default():
    for family in WEIGHT_FAMILIES:
        assert "DEFAULT" in family.__members__


# The default entry of each family and the committed reports its figures were copied from (the
# figures are written into the weights' meta by hand: this is where a rerun that was not copied shows).
DEFAULT_REPORTS = {
    "speech": ("accuracy-speech", "accuracy-speech-cross-corpus"),
    "text": ("accuracy-text", "accuracy-text-cross-corpus"),
    "face": ("accuracy-face",),
}


def _written_precision(value: float) -> float:
    """Half a unit of the last decimal written (0.726 -> 0.0005, 12.28 -> 0.005, 3 -> 0.5)."""
    text = repr(float(value))
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text and "e" not in text else 0
    return 0.5 * 10.0 ** -decimals + 1e-9


@pytest.mark.parametrize("modality", sorted(DEFAULT_REPORTS))
def test_default_weights_figures_are_the_committed_reports(modality):
    import json
    from pathlib import Path

    family = next(f for f in WEIGHT_FAMILIES if f.DEFAULT.meta["modality"] == modality)
    weights = family.DEFAULT.value
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    compared = 0
    for stem in DEFAULT_REPORTS[modality]:
        report = json.loads((results / f"{stem}.json").read_text())
        if "cross-corpus" not in stem:  # a test report names the weights it read
            assert weights.id in json.dumps(report["models"]), f"{stem} was not run with {weights.id}"
        for key, value in weights.meta["metrics"].items():
            if key in report["metrics"]:
                assert abs(report["metrics"][key] - value) <= _written_precision(value), (stem, key, value, report["metrics"][key])
                compared += 1
    assert compared >= 3, "the default's figures name none of its reports' keys"

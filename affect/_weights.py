"""Shipped weights, torchvision style: an enum member bundles the file, its hash and its meta."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Self

from affect._errors import ModelLoadError, UnknownModelError

MODELS_DIR = Path(__file__).resolve().parent / "models"

# Every weights meta carries these keys (checked by tests/test_weights_meta.py).
REQUIRED_META_KEYS = ("name", "version", "modality", "categories", "num_params", "recipe", "trained_on", "licence", "metrics")
# A meta's "licence" is the use its weights allow, then the data they come from and each one's
# licence in brackets: "research use only (MELD GPL-3.0)". `affect models` shows it as written;
# `affect serve` logs the loaded models' by their terms (affect.registry.licences).
_LICENCE = re.compile(r"(?P<terms>[^()]+?) \((?P<data>.+)\)")


def licence_parts(licence: str) -> tuple[str, str]:
    """A meta's ``licence`` as (terms, data): ``"research use only (MELD GPL-3.0)"`` ->
    ``("research use only", "MELD GPL-3.0")``; ``ValueError`` if it is not of that form."""
    match = _LICENCE.fullmatch(licence)
    if match is None:
        raise ValueError(f"a weights licence reads 'TERMS (DATA AND THEIR LICENCES)', got {licence!r}")
    return match["terms"], match["data"]


@dataclass(frozen=True)
class Weights:
    """One set of shipped weights. ``file`` is relative to ``affect/models``."""

    file: str
    sha256: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file

    @property
    def id(self) -> str:
        """``name@version``, as results name the model that made them."""
        return f"{self.meta['name']}@{self.meta['version']}"

    def verified_path(self) -> Path:
        """The file, after checking that it exists and that its SHA-256 matches."""
        return _verify(self.path, self.sha256)


@lru_cache(maxsize=None)
def _verify(path: Path, sha256: str) -> Path:
    if not path.is_file():
        raise ModelLoadError(f"weights file missing: {path} (is the package installed whole?)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelLoadError(f"weights file {path} is damaged: SHA-256 {digest[:12]}..., expected {sha256[:12]}...")
    return path


class WeightsEnum(Enum):
    """Base of each model family's weights enum; ``DEFAULT`` names the recommended member."""

    @classmethod
    def resolve(cls, value: Self | str | None) -> Self:
        if value is None:
            return cls["DEFAULT"]
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.split(".")[-1].upper()
            if key in cls.__members__:
                return cls[key]
            for member in cls:
                if member.value.id == value or member.value.meta.get("name") == value:
                    return member
        raise UnknownModelError(f"unknown {cls.__name__} {value!r}; known (name / id): {cls.known()}")

    @classmethod
    def known(cls) -> str:
        """What ``resolve`` takes, for messages: each member's name and its model id, with the
        aliases that name it: ``MINILM_MULTICORPUS_V5 / text-minilm-multicorpus@5 (DEFAULT)``."""
        aliases: dict[str, list[str]] = {}
        for name, member in cls.__members__.items():
            if name != member.name:
                aliases.setdefault(member.name, []).append(name)
        return ", ".join(f"{member.name} / {member.value.id}" + (f" ({', '.join(aliases[member.name])})"
                                                                  if member.name in aliases else "") for member in cls)

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.value.meta

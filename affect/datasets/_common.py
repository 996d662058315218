from __future__ import annotations

import os
from pathlib import Path

from affect._errors import AffectError

DATA_ROOT_ENV = "AFFECT_DATA_ROOT"


class DatasetNotFoundError(AffectError, FileNotFoundError):
    """A data set's files are not where the reader was told to look."""


def default_data_root() -> Path:
    """``$AFFECT_DATA_ROOT`` if set, else ``../shared/data`` beside the project checkout."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} not found at {path} (pass --data-root or set ${DATA_ROOT_ENV})")
    return path

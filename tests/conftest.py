from __future__ import annotations

from pathlib import Path

import pytest

from affect.datasets import default_data_root


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = default_data_root()
    if not (root / "README.md").is_file():
        pytest.fail(f"the shared data is not at {root}: the tests read real data (set AFFECT_DATA_ROOT)")
    return root


@pytest.fixture(scope="session")
def text_encoder():
    from affect import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="session")
def analyzer(text_encoder):
    """Text only: fast to load, for the tests of the conversation machinery and the service."""
    from affect import Analyzer

    return Analyzer(text=text_encoder, speech=None, face=None)


@pytest.fixture(scope="session")
def full_analyzer(text_encoder):
    """Every shipped encoder."""
    from affect import Analyzer

    return Analyzer(text=text_encoder)

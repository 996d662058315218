"""Text branch: a MiniLM turn encoder with attention over the conversation's earlier turns.

The names are imported on first use, so that ``import affect.text`` (and the CLI's input
checks) do not pay for torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from affect.text.encoder import TextContext, TextEncoder, TextRequest
    from affect.text.weights import TextWeights

__all__ = ["TextContext", "TextEncoder", "TextRequest", "TextWeights"]
_HOME = {"TextContext": "affect.text.encoder", "TextEncoder": "affect.text.encoder",
         "TextRequest": "affect.text.encoder", "TextWeights": "affect.text.weights"}


if not TYPE_CHECKING:  # type checkers see the imports above: a misspelt name is an error, not Any

    def __getattr__(name: str) -> object:
        if name not in _HOME:
            raise AttributeError(f"module 'affect.text' has no attribute {name!r}")
        import importlib

        return getattr(importlib.import_module(_HOME[name]), name)

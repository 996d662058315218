"""Text branch: a MiniLM turn encoder with attention over the conversation's earlier turns."""

from affect.text.encoder import TextContext, TextEncoder, TextRequest
from affect.text.weights import TextWeights

__all__ = ["TextContext", "TextEncoder", "TextRequest", "TextWeights"]

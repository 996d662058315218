"""The entry point: load the encoders once, analyse turns and conversations."""

from __future__ import annotations

from collections.abc import Iterable

from affect.conversation import Conversation, Turn
from affect.results import ModalityResult, TurnResult
from affect.text.encoder import TextEncoder
from affect.text.weights import TextWeights


class Analyzer:
    """Holds the loaded encoders; cheap to share across threads and conversations.

    >>> analyzer = Analyzer()
    >>> with analyzer.conversation() as conv:
    ...     conv.analyze(text="Hi, my order never arrived.", speaker="caller").emotion
    """

    def __init__(self, *, text: TextEncoder | TextWeights | str | None | bool = True) -> None:
        if text is True:
            text = TextEncoder()
        elif isinstance(text, (TextWeights, str)):
            text = TextEncoder(weights=text)
        self.text: TextEncoder | None = text or None

    @property
    def models(self) -> dict[str, str]:
        """Loaded models by modality, as ``name@version``."""
        return {"text": self.text.model_id} if self.text else {}

    def conversation(self, conversation_id: str | None = None, *, text_context: bool = True) -> Conversation:
        """A new conversation; usable directly or as a context manager."""
        return Conversation(self, conversation_id, text_context=text_context)

    def analyze(self, turn: Turn | None = None, /, **fields: object) -> TurnResult:
        """One turn on its own, with no conversation around it."""
        return Conversation(self).analyze(turn, **fields)

    def analyze_conversation(self, turns: Iterable[Turn]) -> list[TurnResult]:
        """Every turn of a whole conversation, in order."""
        conversation = Conversation(self)
        return [conversation.analyze(turn) for turn in turns]

    def analyze_text(self, text: str) -> ModalityResult:
        """The text encoder's own result for one text without context."""
        if self.text is None:
            raise RuntimeError("no text encoder loaded")
        return self.text.analyze(text)

"""The one exception tree of affect.

    AffectError
    ├── InvalidInputError        bad input from the caller (empty, too large, undecodable, ...)
    │   └── InputTooLargeError   within the rules but over a size limit
    ├── ConversationClosedError  a turn given to a conversation after close()
    ├── ModelLoadError           shipped weights missing, corrupt, or not matching their hash
    │   └── UnknownModelError    a weights name that no model family knows
    └── DatasetNotFoundError     (affect.datasets) data files absent

Every message names what was wrong and with which field, so a service can pass it on as is.
"""

from __future__ import annotations

import re


class AffectError(Exception):
    """Base class of every error affect raises on purpose."""


class InvalidInputError(AffectError, ValueError):
    """The input cannot be analysed as given. ``field`` names the offending input."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def message_naming(self, name: str) -> str:
        """The message under another name of its field, once, for a caller who knows the field by
        that name (the server's wire field, the command line's flag): one that begins with the
        field (``audio: x.wav is ...``, ``images[0] could not be decoded``) begins with ``name``
        instead (``--audio: x.wav is ...``); one that begins with ``name`` is kept; any other is
        prefixed with it."""
        message = str(self)
        if message.startswith(name):
            return message
        if self.field and re.match(re.escape(self.field) + r"(?![\w\[.])", message):
            return name + message[len(self.field):]
        return f"{name}: {message}"


class InputTooLargeError(InvalidInputError):
    """The input is over a configured size limit."""


class ConversationClosedError(AffectError, RuntimeError):
    """The conversation was closed (its state is gone): open a new one for more turns."""


class ModelLoadError(AffectError, RuntimeError):
    """A model's weights could not be loaded."""


class UnknownModelError(ModelLoadError, KeyError):
    """No weights of that name (``WeightsEnum.resolve``); a ``ModelLoadError``, as it was before
    it had its own class."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""

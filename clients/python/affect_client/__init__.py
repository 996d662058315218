"""affect-client: talk to an affect service over gRPC, blocking or asyncio.

    from affect_client import AffectClient

    with AffectClient("127.0.0.1:50051") as client, client.conversation() as conversation:
        result = conversation.send("My order never arrived.", speaker="caller")
        print(result.emotion, result.sentiment, result.valence)

The target and token default to ``AFFECT_TARGET`` and ``AFFECT_TOKEN``. Retries are logged (INFO)
to the ``affect_client`` logger, which has only a ``NullHandler`` until the application configures logging. Results have the
affect library's field names and ``to_dict()`` / ``to_json()``; see clients/python/README.md.
"""

import logging

from affect_client._core import ClientOptions
from affect_client._exceptions import (
    AffectClientError,
    AlreadyExistsError,
    APIStatusError,
    ClientClosedError,
    ConnectionSettingError,
    ConversationClosedError,
    ConversationTakenOverError,
    DeadlineExceededError,
    InvalidArgumentError,
    InvalidInputError,
    InvalidSettingError,
    ResourceExhaustedError,
    TurnInputError,
    TurnRefusedError,
    TurnTimeoutError,
    TurnTooLargeError,
    UnauthenticatedError,
    UnavailableError,
)
from affect_client._inputs import Audio, AudioInput, Image, ImageInput
from affect_client._async import AsyncAffectClient, AsyncConversation
from affect_client._sync import AffectClient, Conversation
from affect_client._types import (
    Affect,
    AffectEstimate,
    ConversationState,
    Emotion,
    Event,
    Face,
    FaceReading,
    Modality,
    ModalityResult,
    ModelInfo,
    Sentiment,
    SpeakerForecast,
    SpeakerState,
    TurnLimits,
    TurnResult,
)

__version__ = "0.1.0"

logging.getLogger("affect_client").addHandler(logging.NullHandler())  # a library's logger: silent until configured

__all__ = [
    "APIStatusError",
    "AlreadyExistsError",
    "Affect",
    "AffectClient",
    "AffectEstimate",
    "AffectClientError",
    "AsyncAffectClient",
    "AsyncConversation",
    "Audio",
    "AudioInput",
    "ClientOptions",
    "Conversation",
    "ClientClosedError",
    "ConnectionSettingError",
    "ConversationClosedError",
    "ConversationState",
    "ConversationTakenOverError",
    "DeadlineExceededError",
    "Emotion",
    "Event",
    "Face",
    "FaceReading",
    "Image",
    "ImageInput",
    "InvalidArgumentError",
    "InvalidInputError",
    "InvalidSettingError",
    "Modality",
    "ModalityResult",
    "ModelInfo",
    "ResourceExhaustedError",
    "Sentiment",
    "SpeakerForecast",
    "SpeakerState",
    "TurnInputError",
    "TurnLimits",
    "TurnRefusedError",
    "TurnResult",
    "TurnTimeoutError",
    "TurnTooLargeError",
    "UnauthenticatedError",
    "UnavailableError",
]

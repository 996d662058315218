"""Conversations whose encoders run elsewhere (Ray Serve deployments).

A conversation needs little of an encoder itself: its ``turns`` (``affect.turn_flow.ModalityTurns``:
the text encoder's context window and character limit, the speech encoder's audio checks),
which each encoder deployment hands to the ingress, so the replica that holds the conversation
state loads no model. ``RemoteEncoder`` sends each request to the encoder's deployment, where it
joins a batch, and behaves like the in-process ``MicroBatcher`` (``await submit(request)``).
"""

from __future__ import annotations

from typing import Any


class RemoteEncoder:
    """``await submit(request)`` on an encoder deployment's batched ``run`` method.

    The answer comes back as the encoder gave it; what the conversation keeps of it (the text
    context's new embedding) is recorded in the ingress, by ``affect.turn_flow``, as in one process.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def submit(self, request: Any) -> Any:
        answer = await self.handle.run.remote(request)
        if isinstance(answer, BaseException):  # this request's own failure (``batching.batch_or_each``)
            raise answer
        return answer

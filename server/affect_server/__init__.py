"""The affect streaming service: gRPC on grpc.aio, one bidirectional stream per conversation.

Start it with ``affect serve`` (see ``affect serve --help`` for flags and environment variables).
"""

from affect_server.config import ServerConfig

__all__ = ["ServerConfig"]

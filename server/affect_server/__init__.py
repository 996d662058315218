"""The affect streaming service: gRPC on grpc.aio, one bidirectional stream per conversation.

Start it with ``affect serve`` (see ``affect serve --help`` for flags and environment variables).
"""

import os as _os

# OpenCV's own limit on a decoded picture, set to the library's per-image limit
# (affect.face._input.MAX_PIXELS; a test keeps the two equal) for a server process: a second line
# behind the header check, so that no header, however crafted, decodes into more pixels than an
# image may hold. OpenCV reads the variable when cv2 is imported, so it is set here, before
# anything of the server imports it; an operator's own value stands.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "40000000")

from affect_server.config import ServerConfig  # noqa: E402

__all__ = ["ServerConfig"]

"""What a test runs first in a fresh interpreter so that any network attempt fails and is counted."""

import textwrap

REFUSE_NETWORK = textwrap.dedent(
    """
    import socket, sys
    attempts = []
    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network disabled by test")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = lambda address, *a, **k: refuse(None, address)
    """
)

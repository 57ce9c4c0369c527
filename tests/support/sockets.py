"""Reading raw answers in tests: a socket's timeout does not fire at end of file, so a loop that adds
``sock.recv()`` until an answer is whole would spin forever once the peer closes early."""

from __future__ import annotations

import socket


def received(sock: socket.socket, size: int = 65536) -> bytes:
    """The next bytes from ``sock``; ConnectionError when the peer has closed (instead of b"" forever)."""
    chunk = sock.recv(size)
    if not chunk:
        raise ConnectionError("the peer closed the connection before its answer was whole")
    return chunk

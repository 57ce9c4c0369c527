"""Application-message framing inside TLS: an 8-byte big-endian length, then the bytes.

Both directions use it. A receiver buffers a session's bytes until a whole
message has arrived, so one message may span many TLS records and HTTP posts,
and one post may carry the end of one message and the start of the next.
"""

from __future__ import annotations

import struct
from collections import deque

HEADER = struct.Struct(">Q")
Buffer = bytes | bytearray | memoryview  # what the wire modules accept as bytes
DEFAULT_MAX_MESSAGE = 1 << 30  # 1 GiB: veracruz-client sends a whole file as one message


class FrameTooLarge(ValueError):
    """A peer announced a message larger than the receiver accepts."""


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 8-byte big-endian length."""
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Reassemble length-prefixed messages from arbitrary byte chunks.

    A large message arrives as many TLS records (16 KiB each): its pieces are
    kept as they came and joined once, so each byte is copied once, not once
    per growth of a buffer (a ``bytearray +=`` per record copies a 1 MiB
    message several times over) and again to cut the header off.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._pieces: deque[bytes | memoryview] = deque()
        self._have = 0  # bytes in _pieces (after the current message's header, once read)
        self._expected: int | None = None
        self._max = max_message

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return self._have + (HEADER.size if self._expected is not None else 0)

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Add bytes (a view is kept as it is until its message is joined); return the messages they complete."""
        return [
            taken[0] if len(taken) == 1 and isinstance(taken[0], bytes) else b"".join(taken)
            for taken in self.feed_pieces(data)
        ]

    def feed_pieces(self, data: bytes | memoryview) -> list[list[bytes | memoryview]]:
        """:meth:`feed`, each message given as the pieces it arrived in (in order, never empty lists), not
        joined: a receiver that can use the pieces as they are (a file write) copies nothing."""
        if data:
            self._pieces.append(data)
            self._have += len(data)
        messages: list[list[bytes | memoryview]] = []
        while True:
            if self._expected is None:
                if self._have < HEADER.size:
                    return messages
                if len(self._pieces[0]) < HEADER.size:
                    self._pieces = deque([b"".join(self._pieces)])
                first = self._pieces.popleft()
                (length,) = HEADER.unpack_from(first)
                if length > self._max:
                    raise FrameTooLarge(f"message of {length} bytes exceeds the {self._max}-byte limit")
                if len(first) > HEADER.size:
                    self._pieces.appendleft(first[HEADER.size :])
                self._have -= HEADER.size
                self._expected = length
            if self._have < self._expected:
                return messages
            need, taken = self._expected, list[bytes | memoryview]()
            if not need:
                taken.append(b"")
            while need:
                piece = self._pieces.popleft()
                if len(piece) > need:  # the next message starts in this piece
                    self._pieces.appendleft(piece[need:])
                    piece = piece[:need]
                taken.append(piece)
                need -= len(piece)
            messages.append(taken)
            self._have -= self._expected
            self._expected = None

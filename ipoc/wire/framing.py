"""Application-message framing inside TLS: an 8-byte big-endian length, then the bytes.

Both directions use it. A receiver buffers a session's bytes until a whole
message has arrived, so one message may span many TLS records and HTTP posts,
and one post may carry the end of one message and the start of the next.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">Q")
DEFAULT_MAX_MESSAGE = 1 << 30  # 1 GiB: veracruz-client sends a whole file as one message


class FrameTooLarge(ValueError):
    """A peer announced a message larger than the receiver accepts."""


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 8-byte big-endian length."""
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Reassemble length-prefixed messages from arbitrary byte chunks."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._expected: int | None = None
        self._max = max_message

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every message they complete, in order."""
        self._buffer += data
        messages: list[bytes] = []
        while True:
            if self._expected is None:
                if len(self._buffer) < HEADER.size:
                    return messages
                (length,) = HEADER.unpack_from(self._buffer)
                if length > self._max:
                    raise FrameTooLarge(f"message of {length} bytes exceeds the {self._max}-byte limit")
                self._expected = length
            end = HEADER.size + self._expected
            if len(self._buffer) < end:
                return messages
            messages.append(bytes(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
            self._expected = None

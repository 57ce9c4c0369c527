"""YUV4MPEG2 (4:2:0) writing and reading: the plaintext format the VOD detector decrypts to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np


@dataclass(frozen=True)
class Frame:
    y: np.ndarray  # (h, w) uint8
    u: np.ndarray  # (ceil(h/2), ceil(w/2)) uint8
    v: np.ndarray


def header(width: int, height: int, fps: tuple[int, int] = (30, 1)) -> bytes:
    return f"YUV4MPEG2 W{width} H{height} F{fps[0]}:{fps[1]} Ip A1:1 C420jpeg\n".encode()


def frame_bytes(frame: Frame) -> bytes:
    return b"FRAME\n" + frame.y.tobytes() + frame.u.tobytes() + frame.v.tobytes()


def read_frames(stream: BinaryIO) -> Iterator[Frame]:
    """Parse a 4:2:0 Y4M stream frame by frame (used by tests and tools, never inside the enclave)."""
    line = stream.readline()
    if not line.startswith(b"YUV4MPEG2 "):
        raise ValueError("not a YUV4MPEG2 stream")
    fields = {token[:1]: token[1:] for token in line.decode().split()[1:]}
    width, height = int(fields["W"]), int(fields["H"])
    cw, ch = (width + 1) // 2, (height + 1) // 2
    while True:
        marker = stream.readline()
        if not marker:
            return
        if not marker.startswith(b"FRAME"):
            raise ValueError("corrupt Y4M: expected FRAME")
        data = stream.read(width * height + 2 * cw * ch)
        y = np.frombuffer(data[: width * height], np.uint8).reshape(height, width)
        u = np.frombuffer(data[width * height : width * height + cw * ch], np.uint8).reshape(ch, cw)
        v = np.frombuffer(data[width * height + cw * ch :], np.uint8).reshape(ch, cw)
        yield Frame(y, u, v)

"""Decode any video PyAV reads into 4:2:0 frames, and encrypt a Y4M stream with AES-128-CTR.

Encryption matches the detector and the original VOD: AES-128 in CTR mode with
the 16-byte IV as the full initial counter block, no padding, so the output has
the input's length. It streams: memory stays at one frame whatever the video's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from client.camera.y4m import Frame, frame_bytes, header


def decode_frames(video: Path, *, max_frames: int | None = None) -> tuple[int, int, Iterator[Frame]]:
    """Width, height and the frames (as 4:2:0 planes) of a video file."""
    import av

    container = av.open(str(video))
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height

    def frames() -> Iterator[Frame]:
        try:
            for index, frame in enumerate(container.decode(stream)):
                if max_frames is not None and index >= max_frames:
                    return
                planes = frame.reformat(format="yuvj420p").to_ndarray()  # (h * 3/2, w): Y, then U, then V
                yield _split(planes, frame.width, frame.height)
        finally:
            container.close()

    return width, height, frames()


def frame_count(video: Path) -> int | None:
    """How many frames the container declares (None when it does not say), for progress only."""
    import av

    with av.open(str(video)) as container:
        return container.streams.video[0].frames or None


def _split(planes: np.ndarray, width: int, height: int) -> Frame:
    cw, ch = (width + 1) // 2, (height + 1) // 2
    flat = planes.reshape(-1)
    y = flat[: width * height].reshape(height, width)
    u = flat[width * height : width * height + cw * ch].reshape(ch, cw)
    v = flat[width * height + cw * ch : width * height + 2 * cw * ch].reshape(ch, cw)
    return Frame(y.copy(), u.copy(), v.copy())


def encrypt_frames(
    width: int,
    height: int,
    frames: Iterator[Frame],
    out: BinaryIO,
    key: bytes,
    iv: bytes,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the frames as an encrypted Y4M stream; returns the frame count.

    ``progress(1)`` is called after each frame is written.
    """
    if len(key) != 16 or len(iv) != 16:
        raise ValueError("the key and the IV must be 16 bytes each")
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    out.write(encryptor.update(header(width, height)))
    count = 0
    for frame in frames:
        out.write(encryptor.update(frame_bytes(frame)))
        count += 1
        if progress:
            progress(1)
    out.write(encryptor.finalize())
    return count


def decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()

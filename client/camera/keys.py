"""The camera's key material: AES-128's key and IV (the initial counter block), 16 raw bytes each, in files of
their own. Light on purpose: `ipoc run` reads them too, and must not import the video stack to do so."""

from __future__ import annotations

import os
from pathlib import Path

KEY_BYTES = 16  # AES-128: the key, and the IV (the initial counter block)


def new_key_material() -> tuple[bytes, bytes]:
    return os.urandom(KEY_BYTES), os.urandom(KEY_BYTES)


def key_material(path: Path, what: str) -> bytes:
    """The 16 bytes of a key or IV file; ValueError naming the file when it holds any other number (a file
    of more bytes is not a key file: taking its first 16 would fail only once the enclave decrypts)."""
    size = path.stat().st_size
    if size != KEY_BYTES:
        raise ValueError(
            f"{path} holds {size} bytes; a {what} file holds exactly {KEY_BYTES} "
            "(the raw bytes `ipoc camera encrypt` writes beside its output)"
        )
    return path.read_bytes()

"""A file's bytes written from the pieces its message arrived in, whatever the system calls take at a time."""

from __future__ import annotations

import os
import random

import pytest

from runtime import vfs


@pytest.mark.parametrize("most", [7, 4096, None])
def test_write_all_writes_every_piece_in_order_through_short_writes(tmp_path, monkeypatch, most):
    pieces: list[bytes | bytearray | memoryview] = [random.randbytes(n) for n in (0, 5, 16384, 3, 0, 70000)]
    pieces += [memoryview(random.randbytes(100))[10:], bytearray(b"tail")]
    pieces += [random.randbytes(2) for _ in range(vfs.WRITEV_MAX + 5)]  # more than one writev may take
    pieces += [random.randbytes(vfs.WRITE_STEP * 2 + 3), random.randbytes(vfs.WRITE_STEP - 1)]  # more than one call
    calls = []
    real = os.writev

    def short(fd: int, buffers: list[memoryview]) -> int:
        calls.append((len(buffers), sum(len(b) for b in buffers)))
        if most is None:
            return real(fd, buffers)
        data = b"".join(buffers)[:most]  # the kernel may take less than offered
        return real(fd, [data])

    monkeypatch.setattr(vfs.os, "writev", short)
    target = tmp_path / "f"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        vfs.write_all(fd, pieces)
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(bytes(p) for p in pieces)
    assert max(count for count, _ in calls) <= vfs.WRITEV_MAX
    assert max(size for _, size in calls) <= vfs.WRITE_STEP

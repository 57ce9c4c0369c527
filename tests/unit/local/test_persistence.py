"""The durable state's file primitives and layout check (the moto side runs end to end in tests/e2e)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.persistence import (
    LAYOUT,
    LAYOUT_VERSION,
    DurableState,
    StateLayoutError,
    StoredBytes,
    check_layout,
    write_atomically,
)


def test_write_atomically_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    write_atomically(path, [b"old"])

    def failing():
        yield b"new, half"
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically(path, failing())
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["item.json"]  # no temporary file left behind


def test_a_process_killed_while_writing_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    """SIGKILL a writer in the middle of a 64 MiB write: the file is the old bytes, never a prefix of the new."""
    path = tmp_path / "object"
    write_atomically(path, [b"old"])
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from pathlib import Path; from local.persistence import write_atomically\n"
                "def chunks():\n"
                "    for n in range(64):\n"
                "        if n == 8: print('writing', flush=True)\n"
                "        yield b'x' * 2**20\n"
                f"write_atomically(Path({str(path)!r}), chunks())\n"
                "sys.stdin.read()\n"
            ),
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert writer.stdout is not None
    writer.stdout.readline()
    writer.kill()
    writer.wait(10)
    assert path.read_bytes() in (b"old", b"x" * 64 * 2**20)
    # AND the next start removes what the killed writer left (up to an object's size of disk, never state)
    assert [p.name for p in tmp_path.glob(".*.tmp")], "the killed writer left no temporary file to clean"
    DurableState.open(tmp_path / "state", "us-east-1")  # a state directory of its own: nothing to remove there
    from local.persistence import remove_partial_writes

    assert remove_partial_writes(tmp_path) == 1 and not list(tmp_path.glob(".*.tmp"))


def test_a_stack_killed_while_writing_its_first_format_file_starts_next_time(tmp_path: Path) -> None:
    """A kill during the very first write leaves only FORMAT's temporary file: that is no state of another layout."""
    root = tmp_path / "state"
    root.mkdir()
    (root / ".FORMAT.4242.tmp").write_bytes(b'{"lay')
    DurableState.open(root, "us-east-1")
    assert json.loads((root / "FORMAT").read_text())["version"] == LAYOUT_VERSION
    assert not list(root.glob(".*.tmp"))


def test_stored_bytes_reads_after_the_header_without_a_shared_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.object"
    payload = os.urandom(100_000)
    header = json.dumps({"key": "k", "size": len(payload)}).encode() + b"\n"
    path.write_bytes(header + payload)
    one, two = StoredBytes(path, len(header), len(payload)), StoredBytes(path, len(header), len(payload))
    assert one.read(10) == payload[:10]
    assert two.read() == payload
    assert one.read() == payload[10:]
    one.seek(-5, io.SEEK_END)
    assert one.read() == payload[-5:]
    assert not [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(path)]
    # AND a file replaced since is refused, never read as this object's bytes
    path.with_name("new").write_bytes(header + os.urandom(len(payload)))
    path.with_name("new").replace(path)
    two.seek(0)
    with pytest.raises(OSError, match="replaced"):
        two.read(3)
    one.close()
    two.close()
    with pytest.raises(ValueError, match="closed"):
        one.read()


def test_another_layout_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "FORMAT").write_text(json.dumps({"layout": LAYOUT, "version": LAYOUT_VERSION + 1}))
    with pytest.raises(StateLayoutError, match=f"version {LAYOUT_VERSION + 1}.*ipoc local up --fresh"):
        check_layout(root)
    (root / "FORMAT").unlink()
    (root / "something").write_text("not ours")
    with pytest.raises(StateLayoutError, match="no readable FORMAT"):
        check_layout(root)
    check_layout(tmp_path / "absent")  # nothing kept yet: fine

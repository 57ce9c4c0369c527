"""The runtime measurement: a deterministic digest of the code a runtime runs.

On Nitro the measurement is PCR0 of the enclave image; on Veracruz's linux
platform it is the sha256 of the runtime binary. Ours is the sha256 over the
sources of the ``runtime`` and ``ipoc`` packages (sorted relative path and
content of each file), so any change to the code that enforces a policy
changes the measurement a policy pins.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import ipoc
import runtime

_PACKAGES = (Path(runtime.__file__).parent, Path(ipoc.__file__).parent)
_SUFFIXES = {".py", ".json", ".proto"}


def _files() -> list[tuple[str, Path]]:
    found = []
    for root in _PACKAGES:
        for path in root.rglob("*"):
            if path.is_file() and path.suffix in _SUFFIXES and "__pycache__" not in path.parts:
                found.append((f"{root.name}/{path.relative_to(root).as_posix()}", path))
    return sorted(found)


@cache
def measurement() -> str:
    """Lowercase hex sha256 measurement of this runtime's code (computed once per process)."""
    digest = hashlib.sha256()
    for name, path in _files():
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()

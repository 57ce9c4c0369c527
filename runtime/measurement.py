"""The runtime measurement: a deterministic digest of the code a runtime runs.

On Nitro the measurement is PCR0 of the enclave image; on Veracruz's linux
platform it is the sha256 of the runtime binary. Ours is the sha256 over the
sources of the ``runtime`` and ``ipoc`` packages (sorted relative path and
content of each file), so any change to the code that enforces a policy
changes the measurement a policy pins.

The simulated Nitro platform (``nitro-sim``) reports PCR0 as the SHA-384 over
the same files, so, as on Nitro, a policy pins ``runtime_manager_hash_nitro`` =
the first 32 bytes of PCR0 (what Veracruz's ``generate-policy --pcr-file`` keeps).
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


def _digest(algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    for name, path in _files():
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.new(algorithm, path.read_bytes()).digest())
    return digest.hexdigest()


@cache
def measurement() -> str:
    """Lowercase hex sha256 measurement of this runtime's code (computed once per process)."""
    return _digest("sha256")


@cache
def nitro_sim_pcr0() -> str:
    """PCR0 of the simulated Nitro platform: 96 hex digits (SHA-384) over the same code."""
    return _digest("sha384")


def nitro_sim_pcrs(pcr0: str | None = None) -> dict[int, bytes]:
    """The 16 PCRs the simulated NSM reports: PCR0 as measured (or as given), PCR1/PCR2 derived, the rest zero."""
    first = bytes.fromhex(pcr0 or nitro_sim_pcr0())
    pcrs = {index: bytes(48) for index in range(16)}
    pcrs[0] = first
    pcrs[1] = hashlib.sha384(b"nitro-sim kernel" + first).digest()
    pcrs[2] = hashlib.sha384(b"nitro-sim application" + first).digest()
    return pcrs

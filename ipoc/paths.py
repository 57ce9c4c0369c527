"""Where i-PoC keeps its local state: ``$IPOC_HOME``, else ``~/.local/share/ipoc``.

Tests and parallel stacks point ``IPOC_HOME`` at their own directory so that
nothing they create (CA keys, platform keys, runtime scratch) is shared.
"""

from __future__ import annotations

import os
from pathlib import Path


def ipoc_home() -> Path:
    configured = os.environ.get("IPOC_HOME")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ipoc"


def attestation_dir() -> Path:
    """The local proxy attestation service's CA key and certificate."""
    return ipoc_home() / "attestation"


def platform_dir() -> Path:
    """The simulated platform's signing key (one per installation)."""
    return ipoc_home() / "platform"

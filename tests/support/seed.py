"""The seed's policy examples (tests/data/seed/), loaded as the seed wrote them."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

SEED = Path(__file__).resolve().parent.parent / "data" / "seed"


def load(name: str) -> Any:
    return json.loads((SEED / name).read_text())


# Small stand-ins for the vod_small function's files (the seed gives only their hashes).
PROGRAM = b"\0asm fake detector"
NAMES = b"person\nbicycle\ncar\n"
CFG = b"[net]\nwidth=416\n"
WEIGHTS = bytes(range(256)) * 64


def small_function(name: str = "vod_small") -> dict:
    """The seed's vod_small registration, with hashes of small stand-in files."""
    policy = copy.deepcopy(load("function_vod.json"))
    policy["function"] = name
    policy["programs"][0]["pi_hash"] = hashlib.sha256(PROGRAM).hexdigest()
    for entry, content in zip(policy["data_files"], (NAMES, CFG, WEIGHTS), strict=True):
        entry["pi_hash"] = hashlib.sha256(content).hexdigest()
    return policy

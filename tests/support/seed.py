"""The seed's policy examples (tests/data/seed/), loaded as the seed wrote them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SEED = Path(__file__).resolve().parent.parent / "data" / "seed"


def load(name: str) -> Any:
    return json.loads((SEED / name).read_text())

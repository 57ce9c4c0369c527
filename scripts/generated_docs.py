"""What the scripts that generate docs/ pages share: write the page, or with ``--check`` say whether it is stale."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(target: Path, text: str, script: str, argv: list[str]) -> int:
    """Write ``text`` to ``target``; with ``--check`` in ``argv`` write nothing and return 1 when ``target``
    differs (a test runs each script so: a page must not drift from what it is generated from)."""
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target.name} is stale: run .venv/bin/python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    return 0

"""Print the exact pins of the named distributions from pyproject.toml (the proxy image installs only these).

Usage: python pins.py pyproject.toml NAME... ; fails if pyproject.toml pins none of a NAME.
"""

from __future__ import annotations

import re
import sys
import tomllib


def pins(pyproject: str, names: list[str]) -> list[str]:
    with open(pyproject, "rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    wanted = {name.lower() for name in names}
    chosen = {re.split(r"[\[=<>!~ ;]", d)[0].lower(): d.split(";")[0].strip() for d in dependencies}
    missing = sorted(wanted - chosen.keys())
    if missing:
        raise SystemExit(f"pyproject.toml pins none of: {', '.join(missing)}")
    return [chosen[name] for name in sorted(wanted)]


if __name__ == "__main__":
    print("\n".join(pins(sys.argv[1], sys.argv[2:])))

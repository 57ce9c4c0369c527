"""The end-to-end demo's timeline (`make demo`'s steps), one FIGURE per step and the total.

    make bench            (or: .venv/bin/python bench/demo.py)

Runs scripts/demo.py as a subprocess and writes build/bench/demo.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:60]


def main() -> None:
    timings_file = Path(tempfile.mkdtemp(prefix="ipoc-bench-demo-")) / "timings.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "IPOC_DEMO_TIMINGS": str(timings_file)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"the demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    timings = json.loads(timings_file.read_text())
    figures = []
    for entry in timings:
        name = f"demo_{slug(entry['step'])}"
        figures.append({"kind": "FIGURE", "name": name, "value": entry["seconds"], "unit": "s", "step": entry["step"]})
        print(f"FIGURE {name} {entry['seconds']:.3f} s", flush=True)
    total = sum(e["seconds"] for e in timings)
    figures.append({"kind": "FIGURE", "name": "demo_total", "value": total, "unit": "s"})
    print(f"FIGURE demo_total {total:.3f} s")
    out = ROOT / "build" / "bench" / "demo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

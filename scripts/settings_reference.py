"""Generate docs/settings.md, the settings reference, from the settings table itself (lambdas/shared/config.py).

.venv/bin/python scripts/settings_reference.py          # rewrite docs/settings.md
.venv/bin/python scripts/settings_reference.py --check  # exit 1 when docs/settings.md is stale (a test runs this)
"""

from __future__ import annotations

import sys
from dataclasses import MISSING, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lambdas.shared.config import Settings  # noqa: E402
from local.stack import STACK_SETS  # noqa: E402
from scripts.generated_docs import write_or_check  # noqa: E402

TARGET = ROOT / "docs" / "settings.md"


def default_text(value: object) -> str:
    if value in ("", ()):
        return "(none)"
    if isinstance(value, tuple):
        return "`" + ",".join(value) + "`"
    if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
        return f"`{value}` ({value >> 20} MiB)"
    return f"`{value}`"


def render() -> str:
    lines = [
        "# Settings",
        "",
        "Generated from `lambdas/shared/config.py` by `scripts/settings_reference.py`; do not edit by hand.",
        "",
        "Every Lambda reads these from its environment, once per process; the CDK app (`infra/`) writes them",
        "all (`Settings.to_environment()`). An unset variable, or an empty number, keeps the default.",
        "`ipoc local up` reads them from its own environment too (for example `IPOC_MAX_TTL=600 ipoc local up`),",
        "except those the last column calls the stack's own: it sets those itself (its tables, buckets, ports,",
        "proxy, identities and workflow), whatever its environment says.",
        "",
        "| variable | default | what it sets | local stack |",
        "|---|---|---|---|",
    ]
    for item in fields(Settings):
        default = item.default if item.default is not MISSING else None
        if item.name in STACK_SETS:
            local = "the stack's own"
        elif item.metadata["what"].startswith("kubernetes backend"):
            local = "unused (the local backend)"
        else:
            local = "from its environment"
        lines.append(f"| `{item.metadata['env']}` | {default_text(default)} | {item.metadata['what']} | {local} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    return write_or_check(TARGET, render(), "settings_reference.py", sys.argv)


if __name__ == "__main__":
    sys.exit(main())

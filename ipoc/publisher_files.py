"""A function's programs and data files are the publisher's: no user identity may read them.

The publisher registers code and data (a detector, model weights) to be run in
the enclave, not handed out: the seed's user policies only open and execute
``/program/``. Veracruz itself would let a user policy grant READ on
``/program/`` or ``/program_data/``, so the composition refuses any user
identity whose rights would cover a declared program or data file with
``FD_READ`` (by Veracruz's own rule: the deepest grant on the path or an
ancestor decides). Executing, and writing the exact hashed bytes, stay allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipoc.errors import PolicyError
from ipoc.rights import Rights, covering_grant, table


def declared_files(function: Mapping[str, Any]) -> list[str]:
    return [p["program_file_name"] for p in function["programs"]] + [
        d["data_file"] for d in function.get("data_files", [])
    ]


def refuse_user_reads(function: Mapping[str, Any], user: Mapping[str, Any]) -> None:
    """Raise PolicyError when a user identity could read one of the function's own files."""
    files = declared_files(function)
    for index, identity in enumerate(user["identities"]):
        grants = table(identity["file_rights"])
        for path in files:
            covering = covering_grant(grants, path)
            if covering and covering[1] & Rights.FD_READ:
                raise PolicyError(
                    f"$.identities[{index}] may not read {path}: a function's programs and data files belong to its "
                    f"publisher (the grant on {covering[0]!r} includes FD_READ); grant OPEN_EXECUTE on the program's "
                    "directory instead",
                    path=f"$.identities[{index}].file_rights",
                )

"""Veracruz file rights: the WASI rights bits plus Veracruz's execute bit.

A policy grants an identity or a program a rights number per directory (or per
``stdin``/``stdout``/``stderr``). This module names the bits, the presets the
i-PoC uses, the rights each client operation needs, and the deepest-ancestor
rule a runtime uses to find which grant applies to a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import IntFlag
from pathlib import PurePosixPath

from ipoc.errors import RightsError


class Rights(IntFlag):
    """WASI ``Rights`` bits 0..28 as the seed names them, plus FILE_EXECUTE (bit 29)."""

    FD_DATASYNC = 1 << 0
    FD_READ = 1 << 1
    FD_SEEK = 1 << 2
    FD_FDSTAT_SET_FLAGS = 1 << 3
    FD_SYNC = 1 << 4
    FD_TELL = 1 << 5
    FD_WRITE = 1 << 6
    FD_ADVISE = 1 << 7
    FD_ALLOCATE = 1 << 8
    PATH_CREATE_DIRECTORY = 1 << 9
    PATH_CREATE_FILE = 1 << 10
    PATH_LINK_SOURCE = 1 << 11
    PATH_LINK_TARGET = 1 << 12
    PATH_OPEN = 1 << 13
    FD_READDIR = 1 << 14
    PATH_READLINK = 1 << 15
    PATH_RENAME_SOURCE = 1 << 16
    PATH_RENAME_TARGET = 1 << 17
    PATH_FILESTAT_GET = 1 << 18
    PATH_FILESTAT_SET_SIZE = 1 << 19
    PATH_FILESTAT_SET_TIMES = 1 << 20
    FD_FILESTAT_GET = 1 << 21
    FD_FILESTAT_SET_SIZE = 1 << 22
    FD_FILESTAT_SET_TIMES = 1 << 23
    PATH_SYMLINK = 1 << 24
    PATH_REMOVE_DIRECTORY = 1 << 25
    PATH_UNLINK_FILE = 1 << 26
    POLL_FD_READWRITE = 1 << 27
    SOCK_SHUTDOWN = 1 << 28
    FILE_EXECUTE = 1 << 29


ALL = Rights((1 << 30) - 1)

# Veracruz's workspaces/shared.mk combinations, which the i-PoC policies use.
READ = Rights(24582)  # FD_READ | FD_SEEK | PATH_OPEN | FD_READDIR
WRITE = Rights(
    534084
)  # FD_SEEK | FD_WRITE | PATH_CREATE_DIRECTORY | PATH_CREATE_FILE | PATH_OPEN | PATH_FILESTAT_SET_SIZE
READ_WRITE = Rights(550470)
OPEN_EXECUTE = Rights(536879104)  # PATH_OPEN | FILE_EXECUTE
WRITE_EXECUTE = Rights(537404996)

PRESETS: dict[str, Rights] = {
    "READ": READ,
    "WRITE": WRITE,
    "READ_WRITE": READ_WRITE,
    "OPEN_EXECUTE": OPEN_EXECUTE,
    "WRITE_EXECUTE": WRITE_EXECUTE,
}
ALIASES: dict[str, Rights] = {"FD_EXECUTE": Rights.FILE_EXECUTE}

# Rights each client operation needs on the grant that covers its path
# (Veracruz's rules). A write or append that creates the file also needs CREATE_FILE_NEEDS.
WRITE_FILE_NEEDS = Rights.PATH_OPEN | Rights.PATH_FILESTAT_SET_SIZE | Rights.FD_WRITE | Rights.FD_SEEK
APPEND_FILE_NEEDS = Rights.PATH_OPEN | Rights.FD_WRITE | Rights.FD_SEEK
CREATE_FILE_NEEDS = Rights.PATH_CREATE_FILE
READ_FILE_NEEDS = Rights.PATH_OPEN | Rights.FD_READ | Rights.FD_SEEK
READ_STREAM_NEEDS = Rights.FD_READ
WRITE_STDIN_NEEDS = Rights.FD_WRITE
EXECUTE_NEEDS = Rights.PATH_OPEN | Rights.FILE_EXECUTE

STREAMS = ("stdin", "stdout", "stderr")

_BIT_NAMES = [flag.name for flag in Rights]


def names(value: int) -> list[str]:
    """The bit names set in ``value``, lowest bit first."""
    _check_range(value)
    return [flag.name for flag in Rights if value & flag]  # type: ignore[misc]  # typeshed: Flag.name is str | None; iterated members are single named bits


def render(value: int) -> str:
    """Render rights compactly: a preset name when exact, else presets plus extra bits.

    ``render(24582) == "READ"``, ``render(24582 | 64) == "READ|FD_WRITE"``,
    ``render(0) == "NONE"``. :func:`parse` reads every form back.
    """
    _check_range(value)
    if value == 0:
        return "NONE"
    for name, preset in PRESETS.items():
        if value == preset:
            return name
    # Use the largest preset fully contained, then name what is left bit by bit.
    best = max((p for p in PRESETS.items() if value & p[1] == p[1]), key=lambda p: bin(p[1]).count("1"), default=None)
    parts: list[str] = []
    rest = value
    if best is not None:
        parts.append(best[0])
        rest &= ~best[1]
    parts.extend(names(rest))
    return "|".join(parts)


def parse(text: str | int) -> Rights:
    """Parse rights written as a number, preset or bit names joined by ``|``, ``,``, ``+`` or spaces."""
    if isinstance(text, int) and not isinstance(text, bool):
        _check_range(text)
        return Rights(text)
    if not isinstance(text, str) or not text.strip():
        raise RightsError("rights must be a number or names such as READ|FD_WRITE")
    total = 0
    for token in re.split(r"[|,+\s]+", text.strip()):
        if not token:
            continue
        upper = token.upper()
        if re.fullmatch(r"\d+|0x[0-9A-F]+", upper):
            value = int(token, 0)
            _check_range(value)
            total |= value
        elif upper == "NONE":
            continue
        elif upper in PRESETS:
            total |= PRESETS[upper]
        elif upper in ALIASES:
            total |= ALIASES[upper]
        elif upper in _BIT_NAMES:
            total |= Rights[upper]
        else:
            raise RightsError(
                f"unknown right {token!r}; use a preset ({', '.join(PRESETS)}) or a bit name such as FD_READ"
            )
    return Rights(total)


def _check_range(value: int) -> None:
    if value < 0 or value > ALL:
        raise RightsError(f"rights value {value} is outside 0..{int(ALL)} (bits 0..29)")


def normalise_path(name: str) -> str:
    """Normalise a rights key or an enclave path for comparison by whole components.

    ``/program/`` and ``/program`` are the same directory; ``stdout`` stays
    ``stdout``. Relative paths other than the three streams are made absolute,
    as veracruz-client does.
    """
    if name in STREAMS:
        return name
    if "\x00" in name:
        raise RightsError("a path cannot contain a NUL byte")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RightsError(f"path {name!r} must not contain '..'")
    return "/" + "/".join(parts)


def table(file_rights: list[Mapping[str, object]]) -> dict[str, Rights]:
    """Turn a policy ``file_rights`` list into {normalised path: rights}; later duplicates win."""
    result: dict[str, Rights] = {}
    for entry in file_rights:
        name = entry.get("file_name")
        value = entry.get("rights")
        if not isinstance(name, str) or not isinstance(value, int):
            raise RightsError("every file_rights entry needs a string file_name and an integer rights")
        result[normalise_path(name)] = Rights(value & ALL)
    return result


def covering_grant(grants: Mapping[str, Rights], path: str) -> tuple[str, Rights] | None:
    """The deepest granted directory that is the path itself or one of its ancestors.

    This is Veracruz's ``find_prestat``: compare by whole components, longest
    first, so a grant on ``/out`` does not cover ``/output/x``.
    """
    target = normalise_path(path)
    if target in STREAMS:
        return (target, grants[target]) if target in grants else None
    for candidate in [PurePosixPath(target), *PurePosixPath(target).parents]:
        key = str(candidate)
        if key in grants:
            return key, grants[key]
    return None

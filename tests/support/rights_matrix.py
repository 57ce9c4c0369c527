"""Every client operation × every right it needs: the cases, and one runtime holding an identity per case.

One runtime holds one identity per case; each case works in its own directory
so that a grant on that directory is the one that applies. Used by
tests/functional/runtime/test_rights_matrix.py and tests/reliability/test_refusals.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import wasmtime

from ipoc import rights
from ipoc.certs import Identity, new_identity
from ipoc.client import VeracruzClient
from tests.support import policies

EXIT0 = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))')


@dataclass(frozen=True)
class Operation:
    name: str
    key: Callable[[str], str]  # the rights key for a case directory
    needs: rights.Rights
    act: Callable[[VeracruzClient, str], object]
    prepare: bool  # whether the admin creates the target first


OPERATIONS = [
    Operation(
        "write new file",
        lambda d: d,
        rights.WRITE_FILE_NEEDS | rights.CREATE_FILE_NEEDS,
        lambda c, d: c.write_file(f"{d}/f", b"x"),
        False,
    ),
    Operation("overwrite file", lambda d: d, rights.WRITE_FILE_NEEDS, lambda c, d: c.write_file(f"{d}/f", b"x"), True),
    Operation(
        "append new file",
        lambda d: d,
        rights.APPEND_FILE_NEEDS | rights.CREATE_FILE_NEEDS,
        lambda c, d: c.append_file(f"{d}/f", b"x"),
        False,
    ),
    Operation(
        "append to file", lambda d: d, rights.APPEND_FILE_NEEDS, lambda c, d: c.append_file(f"{d}/f", b"x"), True
    ),
    Operation("read file", lambda d: d, rights.READ_FILE_NEEDS, lambda c, d: c.read_file(f"{d}/f"), True),
    Operation("execute program", lambda d: d, rights.EXECUTE_NEEDS, lambda c, d: c.execute(f"{d}/f"), True),
    Operation("read stdout", lambda d: "stdout", rights.READ_STREAM_NEEDS, lambda c, d: c.read_file("stdout"), False),
    Operation(
        "write stdin", lambda d: "stdin", rights.WRITE_STDIN_NEEDS, lambda c, d: c.write_file("stdin", b"x"), False
    ),
]


@dataclass(frozen=True)
class Case:
    operation: Operation
    directory: str
    granted: rights.Rights
    missing: rights.Rights | None

    @property
    def id(self) -> str:
        return f"{self.operation.name}: " + (f"without {rights.render(self.missing)}" if self.missing else "granted")


def build_cases() -> list[Case]:
    cases: list[Case] = []
    for operation in OPERATIONS:
        variants = [None] + [bit for bit in rights.Rights if operation.needs & bit]
        for missing in variants:
            granted = operation.needs & ~missing if missing else operation.needs
            cases.append(Case(operation, f"/case{len(cases)}", rights.Rights(granted), missing))
    return cases


CASES = build_cases()


@pytest.fixture(scope="module")
def matrix(module_launcher):
    admin = new_identity("admin")
    case_ids: list[Identity] = [new_identity(f"case{i}") for i in range(len(CASES))]
    identities = [(admin, [{"file_name": "/", "rights": int(rights.ALL)}])]
    for case, identity in zip(CASES, case_ids, strict=True):
        identities.append((identity, [{"file_name": case.operation.key(case.directory), "rights": int(case.granted)}]))
    programs = [
        {"file_rights": [], "id": i, "program_file_name": f"{c.directory}/f"}
        for i, c in enumerate(CASES)
        if c.operation.name == "execute program"
    ]
    runtime = module_launcher.start(policies.vaas_policy(identities, programs=programs))
    with VeracruzClient(runtime.policy, admin.certificate, admin.private_key) as client:
        for case in CASES:
            if case.operation.prepare:
                client.write_file(f"{case.directory}/f", EXIT0)
    return runtime, dict(zip((c.id for c in CASES), case_ids, strict=True))

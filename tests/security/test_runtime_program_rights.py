"""Item 3: a program gets exactly the rights bits its policy grants, not just "read-only or writable"."""

from __future__ import annotations

from ipoc import rights
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies

SHAPE = "/program/shape.wasm"
MKDIR, RENAME, UNLINK, RMDIR, SYMLINK, READ_HIDDEN, MKDIR_READONLY = 1, 2, 4, 8, 16, 32, 64
SHAPE_BITS = rights.Rights.PATH_RENAME_SOURCE | rights.Rights.PATH_RENAME_TARGET | rights.Rights.PATH_UNLINK_FILE
SHAPE_BITS |= rights.Rights.PATH_REMOVE_DIRECTORY | rights.Rights.PATH_SYMLINK


def run_shape(start_runtime, wasm: bytes, output_rights: rights.Rights) -> int:
    admin = fresh("admin")
    vaas = policies.vaas_policy(
        [(admin, ADMIN_RIGHTS)],
        programs=[
            program(
                SHAPE, [("/output/", output_rights), ("/hidden/", rights.Rights.FD_WRITE), ("/input/", rights.READ)]
            )
        ],
    )
    runtime = start_runtime(vaas)
    with client(runtime, admin) as c:
        c.write_file(SHAPE, wasm)
        for path in ("/output/a", "/output/c", "/hidden/f", "/input/x"):
            c.write_file(path, b"data")
        return c.execute(SHAPE)


def test_operations_without_their_bits_are_refused(start_runtime, attacker):
    # READ_WRITE holds PATH_CREATE_DIRECTORY only: mkdir works, nothing else that reshapes the tree;
    # the directory granted FD_WRITE alone (no PATH_OPEN) is not readable; READ on /input/ creates nothing.
    assert run_shape(start_runtime, attacker["shape"], rights.READ_WRITE) == MKDIR


def test_operations_with_their_bits_work(start_runtime, attacker):
    assert (
        run_shape(start_runtime, attacker["shape"], rights.READ_WRITE | SHAPE_BITS)
        == MKDIR | RENAME | UNLINK | RMDIR | SYMLINK
    )

"""Item 3 (read rights): a program opens files only as its grant's bits say (Veracruz's ``path_open``).

wasmtime's pre-opened directories know only "writable or not", so a directory
granted WRITE (no FD_READ) used to hand its files back to the program. The
attacker program (``programs/open_rights.c``, a real C program built with
zig cc) tries each open and reports what SUCCEEDED; the oracle is Veracruz's
rule: PATH_OPEN to open, PATH_CREATE_FILE to create, PATH_FILESTAT_SET_SIZE to
truncate, and a descriptor holding only the rights its directory's grant
holds (no FD_READ: no read), the grant being the deepest one covering the
file the path names after links.
"""

from __future__ import annotations

from ipoc import rights
from ipoc.rights import Rights
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies

OPEN = "/program/open_rights.wasm"
APPEND_ONLY = Rights.PATH_OPEN | Rights.FD_WRITE | Rights.FD_SEEK


def run_open_rights(start_runtime, wasm: bytes, grants: list[tuple[str, int]]) -> dict[str, str]:
    admin = fresh("admin")
    vaas = policies.vaas_policy(
        [(admin, [*ADMIN_RIGHTS, {"file_name": "stdout", "rights": int(rights.READ)}])],
        programs=[program(OPEN, [*grants, ("stdout", rights.WRITE)])],
    )
    runtime = start_runtime(vaas)
    with client(runtime, admin) as c:
        c.write_file(OPEN, wasm)
        for path in ("/out/f", "/in/f", "/rw/x/dummy", "/rw/private/f", "/app/f"):
            c.write_file(path, b"data")
        assert c.execute(OPEN) == 0
        lines = c.read_file("stdout").decode().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_opens_follow_the_grants_bits(start_runtime, attacker):
    outcome = run_open_rights(
        start_runtime,
        attacker["open_rights"],
        [
            ("/out/", rights.WRITE),
            ("/in/", rights.READ),
            ("/rw/", rights.READ_WRITE | Rights.PATH_SYMLINK),
            ("/rw/private/", rights.WRITE),
            ("/app/", APPEND_ONLY),
        ],
    )
    assert outcome == {
        "read_write_only": "refused",  # WRITE holds no FD_READ
        "read_write_only_rdwr": "refused",  # asking for read and write gets write only
        "create_write_only": "ok",
        "read_read": "ok",
        "write_read": "refused",
        "read_nested_through_parent": "refused",  # /rw/'s descriptor does not lend /rw/private/ its read right
        "read_nested": "refused",
        "read_through_link": "refused",  # a link in /rw/ to /rw/private/f is judged by /rw/private/'s grant
        "read_through_dir_link": "refused",
        "read_read_write": "ok",
        "append_append_only": "ok",
        "truncate_append_only": "refused",  # no PATH_FILESTAT_SET_SIZE
        "create_append_only": "refused",  # no PATH_CREATE_FILE
        "list_write_only": "refused",  # no FD_READDIR: the names stay hidden too
        "list_read": "ok",
    }


def test_the_same_opens_work_with_the_bits(start_runtime, attacker):
    everything = rights.READ_WRITE | Rights.PATH_SYMLINK
    outcome = run_open_rights(
        start_runtime,
        attacker["open_rights"],
        [
            ("/out/", rights.READ_WRITE),
            ("/in/", rights.READ_WRITE),
            ("/rw/", everything),
            ("/rw/private/", everything),
            ("/app/", rights.READ_WRITE),
        ],
    )
    assert set(outcome.values()) == {"ok"}, outcome

"""Item 1 (High): links a program plants must not carry a client's operation past its rights.

The attacker is a program granted READ_WRITE on /output/ and a user with rights
on /output/ only; the victim's secret is in /secret_in/. Oracles: the bytes a
second identity can read, and the bytes of a hashed program on disk.
"""

from __future__ import annotations

import pytest

from ipoc import errors, rights
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies

PLANT = "/program/plant_links.wasm"
SECRET = b"the victim's secret"


def start(start_runtime, wasm: bytes, program_rights: list[tuple[str, int]]):
    admin, victim, attacker = fresh("admin"), fresh("victim"), fresh("attacker")
    vaas = policies.vaas_policy(
        [
            (admin, ADMIN_RIGHTS),
            (victim, [{"file_name": "/secret_in/", "rights": int(rights.WRITE)}]),
            (
                attacker,
                [
                    {"file_name": "/output/", "rights": int(rights.READ_WRITE)},
                    {"file_name": "/program/", "rights": int(rights.OPEN_EXECUTE)},
                ],
            ),
        ],
        programs=[program(PLANT, program_rights)],
        file_hashes={PLANT: wasm},
    )
    runtime = start_runtime(vaas)
    with client(runtime, admin) as c:
        c.write_file(PLANT, wasm)
    with client(runtime, victim) as c:
        c.write_file("/secret_in/data", SECRET)
    with client(runtime, attacker) as c:
        c.write_file("/output/readme", b"the attacker's own file")
    return runtime, attacker


def test_program_without_path_symlink_cannot_plant_links(start_runtime, attacker):
    runtime, user = start(start_runtime, attacker["plant_links"], [("/output/", rights.READ_WRITE)])
    with client(runtime, user) as c:
        # both symlink() calls are refused (exit bits 1 and 2)
        assert c.execute(PLANT) == 3
    with client(runtime, user) as c:
        with pytest.raises(errors.FileNotFound):
            c.read_file("/output/sec")
    assert not (runtime.scratch / "fs" / "output" / "sec").is_symlink()
    assert not (runtime.scratch / "fs" / "output" / "progdir").is_symlink()


def test_client_operations_never_follow_planted_links(start_runtime, attacker):
    # A program that MAY make links (PATH_SYMLINK on /) plants them; clients still must not follow them.
    wasm = attacker["plant_links"]
    runtime, user = start(start_runtime, wasm, [("/", rights.READ_WRITE | rights.Rights.PATH_SYMLINK)])
    with client(runtime, user) as c:
        assert c.execute(PLANT) == 0
    assert (runtime.scratch / "fs" / "output" / "sec").is_symlink()
    with client(runtime, user) as c:
        with pytest.raises(errors.AccessDenied, match="symbolic link"):
            c.read_file("/output/sec")
    with client(runtime, user) as c:
        with pytest.raises(errors.AccessDenied, match="symbolic link"):
            c.write_file("/output/progdir/plant_links.wasm", b"replaced")
    with client(runtime, user) as c:
        with pytest.raises(errors.AccessDenied, match="symbolic link"):
            c.append_file("/output/sec", b"appended")
    # nothing behind the links changed
    assert (runtime.scratch / "fs" / "program" / "plant_links.wasm").read_bytes() == wasm
    assert (runtime.scratch / "fs" / "secret_in" / "data").read_bytes() == SECRET

"""Item 7: the enclave file system is capped, for programs and clients, and a refused run leaves nothing behind."""

from __future__ import annotations

import pytest

from ipoc import errors, rights
from tests.security.runtime_support import ADMIN_RIGHTS, client, fresh, program
from tests.support import policies

FILL = "/program/fill_disk.wasm"
CAP = 8 << 20


@pytest.fixture
def capped(start_runtime, attacker, monkeypatch):
    admin = fresh("admin")
    vaas = policies.vaas_policy(
        [(admin, ADMIN_RIGHTS)], programs=[program(FILL, [("/input/", rights.READ), ("/output/", rights.READ_WRITE)])]
    )
    monkeypatch.setenv("IPOC_RUNTIME_MAX_FS_MIB", str(CAP >> 20))  # the runtime's own setting
    runtime = start_runtime(vaas)
    with client(runtime, admin) as c:
        c.write_file(FILL, attacker["fill_disk"])
    return runtime, admin


@pytest.mark.parametrize("mode", [b"w", b"t"], ids=["64 MiB of data", "a 1 TiB sparse file"])
def test_a_program_cannot_grow_the_file_system_past_the_cap(capped, mode):
    runtime, admin = capped
    with client(runtime, admin) as c:
        c.write_file("/input/mode", mode)
        with pytest.raises(errors.RequestRefused, match="FileSystemFull") as info:
            c.execute(FILL)
    assert info.value.reason == "FileSystemFull"
    assert runtime.server.manager.fs.usage() <= CAP
    assert not any((runtime.scratch / "fs" / "output").iterdir())  # the refused run's files are gone
    with client(runtime, admin) as c:
        with pytest.raises(errors.FileNotFound):
            c.read_file("/output/sparse" if mode == b"t" else "/output/big")
    with client(runtime, admin) as c:
        assert c.read_file("/input/mode") == mode  # files from before the run are kept


def test_a_client_cannot_write_past_the_cap(capped):
    runtime, admin = capped
    with client(runtime, admin) as c:
        c.write_file("/input/half", b"h" * (CAP // 2))
        c.write_file("/input/half", b"h" * (CAP // 2))  # an overwrite replaces, it does not add
    with client(runtime, admin) as c:
        with pytest.raises(errors.RequestRefused, match="FileSystemFull"):
            c.write_file("/input/more", b"m" * (CAP // 2 + 1))
    with client(runtime, admin) as c:
        with pytest.raises(errors.RequestRefused, match="FileSystemFull"):
            for _ in range(4):
                c.append_file("/input/half", b"a" * (CAP // 4))

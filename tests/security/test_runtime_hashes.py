"""Item 2: hashes are checked on the bytes that run, not only on the bytes a client wrote.

A Veracruz v1.3 policy names a program's pi_hash through ``file_hashes`` (CCFaaS
lists every program there), so that entry is what execute checks.
"""

from __future__ import annotations

import pytest

from ipoc import errors, rights
from tests.security.runtime_support import ADMIN_RIGHTS, client, exit_with, fresh, program
from tests.support import policies

VICTIM, EVIL, COPIER = "/program/victim.wasm", "/program/evil.wasm", "/program/copy_program.wasm"


def test_a_program_overwriting_a_hashed_program_does_not_get_it_run(start_runtime, attacker):
    admin, user = fresh("admin"), fresh("user")
    victim, evil = exit_with(7), exit_with(42)
    vaas = policies.vaas_policy(
        [(admin, ADMIN_RIGHTS), (user, [{"file_name": "/program/", "rights": int(rights.OPEN_EXECUTE)}])],
        programs=[
            program(VICTIM, [], 0),
            program(EVIL, [], 1),
            program(COPIER, [("/program/", rights.READ_WRITE)], 2),
        ],
        file_hashes={VICTIM: victim, EVIL: evil, COPIER: attacker["copy_program"]},
    )
    runtime = start_runtime(vaas)
    with client(runtime, admin) as c:
        for path, wasm in ((VICTIM, victim), (EVIL, evil), (COPIER, attacker["copy_program"])):
            c.write_file(path, wasm)
    with client(runtime, user) as c:
        assert c.execute(VICTIM) == 7
        assert c.execute(COPIER) == 0  # the program really replaced the bytes
    with client(runtime, user) as c:
        with pytest.raises(errors.FileHashMismatch, match="changed after it was written"):
            c.execute(VICTIM)

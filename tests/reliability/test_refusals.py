"""Security refusals, counted: every right each client operation needs, withheld in turn, over a
real runtime (the matrix `make test` runs case by case, here in one pass for the count).

The refusals before any data is sent run in `make test`: a changed policy byte, another runtime
measurement, a forged proxy chain and an identity outside the policy
(tests/functional/runtime/test_client_runtime.py), and tampered programs and data files
(file_hashes: the same file, and the lifecycle's provisioning).
"""

from __future__ import annotations

import pytest

from ipoc import errors, rights
from ipoc.client import VeracruzClient
from tests.reliability.tally import TALLY
from tests.support.rights_matrix import CASES


def test_every_withheld_right_is_refused(matrix):  # noqa: F811
    runtime, identities = matrix
    refused = 0
    for case in CASES:
        if case.missing is None:
            continue
        identity = identities[case.id]
        with VeracruzClient(runtime.policy, identity.certificate, identity.private_key) as client:
            with pytest.raises(errors.AccessDenied, match=f"lack {rights.render(case.missing)}"):
                case.operation.act(client, case.directory)
        refused += 1
    TALLY.add(refusals_checked=refused)
    assert refused >= 20

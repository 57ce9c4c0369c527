"""Every client operation × every right it needs, granted and withheld, over a real runtime.

The cases and the runtime (one identity per case) are in tests/support/rights_matrix.py.
"""

from __future__ import annotations

import pytest

from ipoc import errors, rights
from ipoc.client import VeracruzClient
from tests.support.rights_matrix import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rights_matrix(matrix, case: Case):
    runtime, identities = matrix
    identity = identities[case.id]
    with VeracruzClient(runtime.policy, identity.certificate, identity.private_key) as client:
        if case.missing is None:
            try:
                case.operation.act(client, case.directory)
            except errors.NoResult:
                pass  # an empty stream reads as "no result": allowed, just empty
        else:
            with pytest.raises(errors.AccessDenied, match=f"lack {rights.render(case.missing)}"):
                case.operation.act(client, case.directory)

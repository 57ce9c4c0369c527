"""Item 10: a name longer than a file system allows is a clear refusal, not an internal error."""

from __future__ import annotations

import pytest

from ipoc import errors, rights
from tests.security.runtime_support import client, fresh
from tests.support import policies


@pytest.mark.parametrize(
    "name",
    ["/data/" + "n" * 256, "/data/" + "é" * 128, "/data/" + "/".join(["d" * 200] * 25)],
    ids=["256 ascii bytes", "256 utf-8 bytes", "path over 4096 bytes"],
)
def test_overlong_names_are_refused_clearly(start_runtime, name):
    user = fresh("user")
    runtime = start_runtime(policies.vaas_policy([(user, [{"file_name": "/data/", "rights": int(rights.READ_WRITE)}])]))
    for act in (lambda c: c.write_file(name, b"x"), lambda c: c.read_file(name)):
        with client(runtime, user) as c:
            with pytest.raises(errors.RequestRefused, match="bytes") as info:
                act(c)
        assert info.value.reason == "InvalidRequest"
    with client(runtime, user) as c:
        c.write_file("/data/" + "n" * 255, b"the longest name allowed")
        assert c.read_file("/data/" + "n" * 255) == b"the longest name allowed"

"""The local stack gives the handlers it runs in process their settings, without changing its own environment,
and gives its local AWS process (where the workflow's task Lambdas run) the same settings as environment."""

from __future__ import annotations

import os

from lambdas.shared import config
from lambdas.shared.config import Settings
from local.apigw import LOCAL_ADMIN, principal_arn
from local.stack import ARTIFACTS_BUCKET, INPUT_BUCKET, TABLE_NAMES, LocalStack, StackConfig


def test_the_handlers_settings_are_given_not_written_into_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IPOC_MAX_TTL", "7200")  # a developer's own choice is kept
    before = dict(os.environ)
    previous = config.settings()
    stack = LocalStack(StackConfig(home=tmp_path, runtime_port_min=4100, runtime_port_max=4101))
    stack._configure_handlers("-----BEGIN CERTIFICATE-----\nproxy CA\n-----END CERTIFICATE-----\n")
    try:
        given = config.settings()
        assert given is stack.settings and dict(os.environ) == before
        assert (given.functions_table, given.instances_table, given.slots_table) == tuple(TABLE_NAMES.values())
        assert (given.artifacts_bucket, given.inputs_bucket) == (ARTIFACTS_BUCKET, INPUT_BUCKET)
        assert given.admin_principals == (principal_arn(LOCAL_ADMIN),) and given.backend == "local"
        assert (given.port_min, given.port_max, given.max_ttl) == (4100, 4101, 7200)
        assert given.state_dir == str(tmp_path / "local" / "runtimes") and given.proxy_cert.startswith("-----BEGIN")
        # the task Lambdas' environment in the local AWS process reads back as the same settings
        assert Settings.from_environment(given.to_environment()) == given
    finally:
        stack.stop()
    assert config.settings() is previous  # stopping gives the process its own settings back

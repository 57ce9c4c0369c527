"""The local stack gives the handlers it runs in process their settings, without changing its own environment,
and gives its local AWS process (where the workflow's task Lambdas run) the same settings as environment."""

from __future__ import annotations

import os
from dataclasses import fields

from lambdas.shared import config
from lambdas.shared.config import Settings
from local.apigw import LOCAL_ADMIN, principal_arn
from local.stack import ARTIFACTS_BUCKET, INPUT_BUCKET, STACK_SETS, TABLE_NAMES, LocalStack, StackConfig


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


def test_the_settings_the_stack_calls_its_own_win_over_the_environment(tmp_path, monkeypatch) -> None:
    """docs/settings.md tells a developer which settings ``ipoc local up`` takes from its environment and which it
    sets itself (STACK_SETS): a stray IPOC_PROGRAM_LOAD_SECRET_ARN, another backend or other tables in a
    developer's shell must not reach the stack's handlers."""
    declared = {item.name: item for item in fields(Settings)}
    assert set(STACK_SETS) <= set(declared)
    for name in STACK_SETS:
        default = declared[name].default
        stray = "59999" if isinstance(default, int) else "arn:aws:iam::1:user/stray" if default == () else "stray"
        monkeypatch.setenv(declared[name].metadata["env"], stray)
    monkeypatch.setenv("IPOC_PROGRAM_LOAD_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:stray")
    stack = LocalStack(StackConfig(home=tmp_path, runtime_port_min=4100, runtime_port_max=4101))
    stack._configure_handlers("-----BEGIN CERTIFICATE-----\nproxy CA\n-----END CERTIFICATE-----\n")
    try:
        given = config.settings()
        stray_from_environment = Settings.from_environment()
        kept = [
            name
            for name in STACK_SETS
            if name != "state_machine_arn"  # set once the local AWS has made the workflow (e2e tests run it)
            and getattr(given, name) == getattr(stray_from_environment, name)
        ]
        assert kept == [], f"the stack kept the environment's {kept}"
        assert given.program_load_secret_arn == "" and given.program_load_cert_file
    finally:
        stack.stop()

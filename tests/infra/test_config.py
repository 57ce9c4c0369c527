"""Context validation: a wrong value fails the synth naming its key; cdk.json carries every key."""

from __future__ import annotations

import pytest

from infra.config import DEFAULTS, PREFIX, ConfigError, from_context
from tests.support.synth import context


def config_with(**overrides: object):
    values = {PREFIX + k: v for k, v in overrides.items()}
    return from_context(values.get)


def test_cdk_json_sets_every_key_with_the_defaults() -> None:
    shipped = {k[len(PREFIX) :]: v for k, v in context().items() if k.startswith(PREFIX)}
    assert shipped == DEFAULTS


def test_defaults_give_a_working_config() -> None:
    config = config_with()
    assert config.ports == range(3014, 3024)
    assert config.nitro_instance_types == ("m6i.xlarge",)


def test_cli_strings_are_parsed_as_json_where_the_key_is_structured() -> None:
    config = config_with(portRange="[4000, 4009]", nitroInstanceTypes='["c6i.2xlarge"]', kubernetesVersion="1.34")
    assert (config.port_min, config.port_max, config.kubernetes_version) == (4000, 4009, "1.34")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("nitroInstanceTypes", ["t3.micro"], "cannot run Nitro Enclaves"),
        ("nitroInstanceTypes", "m6i.xlarge", "JSON list of strings"),
        ("portRange", [4000, 3000], "first <= last"),
        ("portRange", [3000, 3200], "at most 100 ports"),
        ("runtimeMeasurement", "ABC", "64 lowercase hex"),
        ("nitroNodes", {"min": 2, "desired": 1, "max": 3}, "nitroNodes"),
        ("defaultTtlSeconds", 90000, "must not exceed"),
        ("apiThrottle", {"rateLimit": 5}, "exactly rateLimit, burstLimit"),
        ("alarmEmail", "nobody", "e-mail address"),
        ("stackPrefix", "ipoc-prod", "letters and digits"),
        ("logRetentionDays", 10, "must be one of"),
    ],
)
def test_bad_values_name_their_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        config_with(**{key: value})
    assert PREFIX + key in str(raised.value)

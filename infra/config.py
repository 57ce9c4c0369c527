"""The deployment's settings, read from CDK context (``cdk.json``, or ``-c key=value``) and checked once.

Every key is listed in :data:`DEFAULTS` with the value ``cdk.json`` ships, so a
fresh clone synthesises without asking for anything; ``-c`` overrides one key
(lists and objects as JSON). A wrong value fails the synth with the key's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ipoc.limits import MAX_RUNTIME_PORTS

PREFIX = "ipoc:"
MEASUREMENT = re.compile(r"^[0-9a-f]{64}$")
PCR0_ENTRY = re.compile(r"^(?:[0-9a-f]{64}|[0-9a-f]{96})$")  # a whole PCR0 (SHA-384) or its first 32 bytes
PROXIES = ("ipoc", "veracruz")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$")
# Nitro Enclaves need a Nitro instance with at least 4 vCPUs; the smaller sizes of these families are refused.
TOO_SMALL_FOR_ENCLAVES = ("nano", "micro", "small", "medium", "large")
# The values CloudWatch Logs accepts for a log group's retention.
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

DEFAULTS: dict[str, Any] = {
    "stackPrefix": "Ipoc",
    "kubernetesVersion": "1.35",
    "nitroInstanceTypes": ["m6i.xlarge"],
    "nitroNodes": {"min": 1, "desired": 1, "max": 4},
    "enclaveMemoryMiB": 2048,
    "enclaveCpus": 2,
    "hugepages2Mi": 1100,
    "hugepages1Gi": 1,
    "runtimeImage": "veracruz/veracruz-nitro:v1.3.3",
    "runtimeMeasurement": "f2ae0de7bec92bcdbd4a96e2ae08d85a575f1aa64acb797bc4afa6b1d3cc8798",
    "pcr0AllowList": [],
    "proxy": "ipoc",
    "portRange": [3014, 3023],
    "defaultTtlSeconds": 3600,
    "maxTtlSeconds": 86400,
    "adminPrincipals": [],
    "clusterPublicAccessCidrs": [],
    "natGateways": 1,
    "apiThrottle": {"rateLimit": 50, "burstLimit": 100},
    "logRetentionDays": 30,
    "reaperMinutes": 1,
    "alarmEmail": "",
}


class ConfigError(ValueError):
    """A context value the deployment cannot use; the message names the key."""


@dataclass(frozen=True)
class DeploymentConfig:
    stack_prefix: str
    kubernetes_version: str
    nitro_instance_types: tuple[str, ...]
    nodes_min: int
    nodes_desired: int
    nodes_max: int
    enclave_memory_mib: int
    enclave_cpus: int
    hugepages_2mi: int
    hugepages_1gi: int
    runtime_image: str
    runtime_measurement: str
    pcr0_allow_list: tuple[str, ...]  # runtime_measurement first, then the extra values
    proxy: str  # "ipoc" (our image, built at deploy time) or "veracruz" (the runtime image's original proxy)
    port_min: int
    port_max: int
    default_ttl: int
    max_ttl: int
    admin_principals: tuple[str, ...]
    cluster_public_access_cidrs: tuple[str, ...]
    nat_gateways: int
    throttle_rate: int
    throttle_burst: int
    log_retention_days: int
    reaper_minutes: int
    alarm_email: str

    @property
    def ports(self) -> range:
        return range(self.port_min, self.port_max + 1)


def _parse(raw: Any) -> Any:
    """``-c key=value`` gives strings; lists, objects and numbers arrive as JSON text."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def from_context(get: Callable[[str], Any]) -> DeploymentConfig:
    """Build the config from ``node.try_get_context`` (or any getter), filling defaults."""

    def value(key: str) -> Any:
        raw = get(PREFIX + key)
        if raw is None:
            return DEFAULTS[key]
        return raw if isinstance(DEFAULTS[key], str) else _parse(raw)

    def integer(key: str, low: int, high: int, found: Any = None) -> int:
        found = value(key) if found is None else found
        if isinstance(found, bool) or not isinstance(found, int) or not low <= found <= high:
            raise ConfigError(f"context {PREFIX}{key} must be an integer in [{low}, {high}], got {found!r}")
        return found

    def strings(key: str) -> tuple[str, ...]:
        found = value(key)
        if not isinstance(found, list) or not all(isinstance(item, str) and item for item in found):
            raise ConfigError(f"context {PREFIX}{key} must be a JSON list of strings, got {found!r}")
        return tuple(found)

    def mapping(key: str, fields: tuple[str, ...]) -> dict[str, Any]:
        found = value(key)
        if not isinstance(found, dict) or set(found) != set(fields):
            raise ConfigError(
                f"context {PREFIX}{key} must be a JSON object with exactly {', '.join(fields)}, got {found!r}"
            )
        return found

    types = strings("nitroInstanceTypes")
    for itype in types:
        if not INSTANCE_TYPE.match(itype) or itype.split(".")[1] in TOO_SMALL_FOR_ENCLAVES:
            raise ConfigError(
                f"context {PREFIX}nitroInstanceTypes: {itype!r} cannot run Nitro Enclaves (use e.g. m6i.xlarge)"
            )
    nodes = mapping("nitroNodes", ("min", "desired", "max"))
    nodes_min, nodes_max = integer("nitroNodes", 0, 100, nodes["min"]), integer("nitroNodes", 1, 100, nodes["max"])
    nodes_desired = integer("nitroNodes", nodes_min, nodes_max, nodes["desired"])
    ports = value("portRange")
    if not (
        isinstance(ports, list)
        and len(ports) == 2
        and all(isinstance(p, int) for p in ports)
        and 1024 <= ports[0] <= ports[1] <= 65535
    ):
        raise ConfigError(
            f"context {PREFIX}portRange must be [first, last] with 1024 <= first <= last <= 65535, got {ports!r}"
        )
    if ports[1] - ports[0] >= MAX_RUNTIME_PORTS:
        raise ConfigError(
            f"context {PREFIX}portRange: at most {MAX_RUNTIME_PORTS} ports (a load balancer listener each), "
            f"got {ports!r}"
        )
    measurement = value("runtimeMeasurement")
    if not isinstance(measurement, str) or not MEASUREMENT.match(measurement):
        raise ConfigError(
            f"context {PREFIX}runtimeMeasurement must be 64 lowercase hex digits (the image's PCR0 prefix), "
            f"got {measurement!r}"
        )
    extra_pcr0 = value("pcr0AllowList")
    if not isinstance(extra_pcr0, list) or not all(isinstance(e, str) and PCR0_ENTRY.match(e) for e in extra_pcr0):
        raise ConfigError(
            f"context {PREFIX}pcr0AllowList must be a JSON list of PCR0 values (96 lowercase hex digits, "
            f"or their first 64), got {extra_pcr0!r}"
        )
    proxy = value("proxy")
    if proxy not in PROXIES:
        raise ConfigError(f"context {PREFIX}proxy must be one of {', '.join(PROXIES)}, got {proxy!r}")
    throttle = mapping("apiThrottle", ("rateLimit", "burstLimit"))
    default_ttl, max_ttl = integer("defaultTtlSeconds", 60, 7 * 86400), integer("maxTtlSeconds", 60, 7 * 86400)
    if default_ttl > max_ttl:
        raise ConfigError(
            f"context {PREFIX}defaultTtlSeconds ({default_ttl}) must not exceed {PREFIX}maxTtlSeconds ({max_ttl})"
        )
    retention = integer("logRetentionDays", 1, 3653)
    if retention not in RETENTION_DAYS:
        raise ConfigError(f"context {PREFIX}logRetentionDays must be one of {RETENTION_DAYS}, got {retention}")
    email = value("alarmEmail")
    if not isinstance(email, str) or (email and "@" not in email):
        raise ConfigError(f"context {PREFIX}alarmEmail must be an e-mail address or empty, got {email!r}")
    version = value("kubernetesVersion")
    if not isinstance(version, str) or not re.fullmatch(r"1\.\d+", version):
        raise ConfigError(f"context {PREFIX}kubernetesVersion must look like 1.35, got {version!r}")
    prefix = value("stackPrefix")
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,20}", prefix):
        raise ConfigError(f"context {PREFIX}stackPrefix must be letters and digits (at most 21), got {prefix!r}")
    image = value("runtimeImage")
    if not isinstance(image, str) or not image or " " in image:
        raise ConfigError(f"context {PREFIX}runtimeImage must be an image reference, got {image!r}")
    return DeploymentConfig(
        stack_prefix=prefix,
        kubernetes_version=version,
        nitro_instance_types=types,
        nodes_min=nodes_min,
        nodes_desired=nodes_desired,
        nodes_max=nodes_max,
        enclave_memory_mib=integer("enclaveMemoryMiB", 512, 256 * 1024),
        enclave_cpus=integer("enclaveCpus", 2, 64),
        hugepages_2mi=integer("hugepages2Mi", 0, 1_000_000),
        hugepages_1gi=integer("hugepages1Gi", 0, 1024),
        runtime_image=image,
        runtime_measurement=measurement,
        pcr0_allow_list=tuple(dict.fromkeys([measurement, *extra_pcr0])),
        proxy=proxy,
        port_min=ports[0],
        port_max=ports[1],
        default_ttl=default_ttl,
        max_ttl=max_ttl,
        admin_principals=strings("adminPrincipals"),
        cluster_public_access_cidrs=strings("clusterPublicAccessCidrs"),
        nat_gateways=integer("natGateways", 1, 3),
        throttle_rate=integer("apiThrottle", 1, 10_000, throttle["rateLimit"]),
        throttle_burst=integer("apiThrottle", 1, 5_000, throttle["burstLimit"]),
        log_retention_days=retention,
        reaper_minutes=integer("reaperMinutes", 1, 60),
        alarm_email=email,
    )

"""Settings: one table of every setting, its environment variable and its default.

A Lambda reads its settings from its environment, once per process
(:func:`settings`). ``infra/`` writes that environment with
:meth:`Settings.to_environment`, ``local/`` gives its in-process handlers a
``Settings`` with :func:`use` (and its AWS process the same environment), and
tests scope theirs with :func:`use` too: every name is written here and
nowhere else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from ipoc.limits import DIRECT_UPLOAD_LIMIT

# Seconds VaaS waits for a new pod's IP: below API Gateway's 29 s integration timeout, as the original's
# 20 polls of 1 s.
POD_IP_TIMEOUT = 20


def _setting(env: str, default: Any, what: str) -> Any:
    """A field of :class:`Settings` read from (and written to) the environment variable ``env``; ``what`` it sets
    (docs/settings.md is generated from it)."""
    return field(default=default, metadata={"env": env, "what": what})


@dataclass(frozen=True)
class Settings:
    """The deployment's settings (frozen and hashable: a value to build services from, and to cache them by)."""

    functions_table: str = _setting("IPOC_FUNCTIONS_TABLE", "ipoc-functions", "DynamoDB table of the functions")
    instances_table: str = _setting("IPOC_INSTANCES_TABLE", "ipoc-instances", "DynamoDB table of the instances")
    slots_table: str = _setting("IPOC_SLOTS_TABLE", "ipoc-slots", "DynamoDB table of the runtime slots (one per port)")
    artifacts_bucket: str = _setting(
        "IPOC_ARTIFACTS_BUCKET", "ipoc-artifacts", "S3 bucket of the functions' programs and data files"
    )
    inputs_bucket: str = _setting(
        "IPOC_INPUTS_BUCKET",
        "ipoc-inputs",
        "S3 bucket of the users' encrypted inputs; without credentials of their own, a user's stream reads only "
        "`users/<principal id>/` of it",
    )
    admin_principals: tuple[str, ...] = _setting(
        "IPOC_ADMIN_PRINCIPALS", (), "comma-separated principal ARNs (`fnmatch` patterns) that may use the admin routes"
    )
    direct_upload_limit: int = _setting(
        "IPOC_DIRECT_UPLOAD_LIMIT",
        DIRECT_UPLOAD_LIMIT,
        "largest program or data file (bytes) the API takes in the request body; the CLI sends larger ones, and any "
        "the API refuses as too large, through a presigned URL",
    )
    max_program_size: int = _setting(
        "IPOC_MAX_PROGRAM_SIZE", 64 * 1024 * 1024, "largest program (bytes) a function may upload (413 above)"
    )
    max_data_file_size: int = _setting(
        "IPOC_MAX_DATA_FILE_SIZE",
        2 * 1024 * 1024 * 1024,
        "largest data file (bytes) a function may upload (413 above)",
    )
    presigned_expiry: int = _setting("IPOC_PRESIGNED_EXPIRY", 3600, "seconds a presigned upload URL stays valid")
    # VaaS
    backend: str = _setting("IPOC_VAAS_BACKEND", "local", "VaaS backend: `local` (runtime processes) or `kubernetes`")
    port_min: int = _setting("IPOC_PORT_MIN", 3014, "first runtime port (one slot per port)")
    port_max: int = _setting("IPOC_PORT_MAX", 3023, "last runtime port")
    endpoint_host: str = _setting(
        "IPOC_ENDPOINT_HOST",
        "127.0.0.1",
        "host the policies' `veracruz_server_url` names (clients reach runtimes there)",
    )
    proxy_url: str = _setting(
        "IPOC_PROXY_URL",
        "127.0.0.1:3010",
        "the proxy attestation service, as the policies' `proxy_attestation_server_url`",
    )
    proxy_cert: str = _setting(
        "IPOC_PROXY_CERT", "", "the proxy's CA certificate (PEM), as the policies' `proxy_service_cert`"
    )
    # In AWS the proxy CA lives in Secrets Manager (made by the deployment's setup function).
    proxy_cert_secret_arn: str = _setting(
        "IPOC_PROXY_CERT_SECRET_ARN",
        "",
        "kubernetes backend: Secrets Manager secret of the proxy's CA certificate, when `IPOC_PROXY_CERT` is empty",
    )
    runtime_hash: str = _setting(
        "IPOC_RUNTIME_HASH",
        "",
        "the runtime's measurement (64 hex digits: PCR0's first 32 bytes on Nitro) the policies pin",
    )
    platform: str = _setting(
        "IPOC_PLATFORM", "linux", "the platform whose runtime hash the policies name: `linux` or `nitro`"
    )
    state_dir: str = _setting(
        "IPOC_STATE_DIR", "", "the local backend's directory of runtime processes (pids, scratch)"
    )
    warm_pool: int = _setting(
        "IPOC_WARM_POOL",
        2,
        "local backend: runtimes kept started and attested ahead of their policy (0 disables the pool)",
    )
    kube_namespace: str = _setting("IPOC_K8S_NAMESPACE", "veracruz", "kubernetes backend: the runtime pods' namespace")
    runtime_image: str = _setting(
        "IPOC_RUNTIME_IMAGE", "veracruz/veracruz-nitro:v1.3.3", "kubernetes backend: the runtime pods' image"
    )
    runtime_pod_mib: int = _setting("IPOC_RUNTIME_POD_MIB", 500, "kubernetes backend: a runtime pod's memory (MiB)")
    runtime_cpu_millis: int = _setting(
        "IPOC_RUNTIME_CPU_MILLIS", 1000, "kubernetes backend: a runtime pod's CPU (millicores)"
    )
    eks_cluster: str = _setting(
        "IPOC_EKS_CLUSTER", "", "kubernetes backend: the EKS cluster's name (its tokens are signed for it)"
    )
    kube_host: str = _setting("IPOC_K8S_HOST", "", "kubernetes backend: the cluster API's URL")
    kube_ca_file: str = _setting("IPOC_K8S_CA_FILE", "", "kubernetes backend: the cluster CA's file")
    kube_ca_data: str = _setting(
        "IPOC_K8S_CA_DATA",
        "",
        "kubernetes backend: the cluster CA as EKS reports it (base64 PEM), when there is no file",
    )
    pod_ip_timeout: int = _setting(
        "IPOC_POD_IP_TIMEOUT", POD_IP_TIMEOUT, "kubernetes backend: seconds a create waits for a new pod's IP"
    )
    # S3 streamer
    stream_chunk: int = _setting("IPOC_STREAM_CHUNK", 1024 * 1024, "bytes the S3 streamer sends a runtime per append")
    # Instance lifecycle
    state_machine_arn: str = _setting("IPOC_STATE_MACHINE_ARN", "", "the instance lifecycle's state machine")
    program_load_cert_file: str = _setting(
        "IPOC_PROGRAM_LOAD_CERT_FILE", "", "CCFaaS's program-load identity: its certificate's file"
    )
    program_load_key_file: str = _setting(
        "IPOC_PROGRAM_LOAD_KEY_FILE", "", "CCFaaS's program-load identity: its key's file"
    )
    program_load_secret_arn: str = _setting(
        "IPOC_PROGRAM_LOAD_SECRET_ARN",
        "",
        "Secrets Manager secret holding the program-load identity, in place of the files",
    )
    default_ttl: int = _setting(
        "IPOC_DEFAULT_TTL", 3600, "an instance's lifetime (seconds) when `POST /instance` gives no `ttl`"
    )
    max_ttl: int = _setting(
        "IPOC_MAX_TTL", 24 * 3600, "the longest `ttl` (seconds) `POST /instance` accepts (the shortest: 60)"
    )
    allocate_wait: int = _setting(
        "IPOC_ALLOCATE_WAIT", 120, "seconds the workflow waits for a free runtime slot before the instance fails"
    )
    ready_timeout: int = _setting(
        "IPOC_READY_TIMEOUT",
        120,
        "seconds the workflow waits for an allocated runtime to answer before the instance fails",
    )
    instance_wait: int = _setting(
        "IPOC_INSTANCE_WAIT",
        25,
        "seconds `POST /instance` waits for READY unless `?wait=` says (at most 25: API Gateway's 29 s)",
    )

    @staticmethod
    def names() -> dict[str, str]:
        """Each field's environment variable, in the table's order."""
        return {f.name: f.metadata["env"] for f in fields(Settings)}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings an environment names; an unset variable (or an empty number) keeps the default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = item.metadata["env"]
            if name not in environ:
                continue
            raw = environ[name]
            if isinstance(item.default, str):
                values[item.name] = raw
            elif raw == "":
                continue
            elif isinstance(item.default, int):
                try:
                    values[item.name] = int(raw)
                except ValueError:
                    raise RuntimeError(
                        f"environment variable {item.metadata['env']} must be an integer, got {raw!r}"
                    ) from None
            else:
                values[item.name] = tuple(part.strip() for part in raw.split(",") if part.strip())
        return cls(**values)

    def to_environment(self) -> dict[str, str]:
        """Every setting as the environment variable :meth:`from_environment` reads back (all of them, defaults too).

        Values may be CDK tokens (strings standing for deploy-time values): they pass through unchanged.
        """
        environment = {}
        for item in fields(self):
            value = getattr(self, item.name)
            environment[item.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
        return environment


_lock = threading.Lock()
_current: Settings | None = None


def settings() -> Settings:
    """This process's settings: those given to :func:`use`, else its environment's (read once: a Lambda's
    environment does not change while it is warm)."""
    global _current
    current = _current
    if current is None:
        with _lock:
            if _current is None:
                _current = Settings.from_environment()
            current = _current
    return current


def use(value: Settings | None) -> Settings | None:
    """Make ``value`` this process's settings (``None``: read the environment again); returns the previous ones.

    For processes that run handlers without a Lambda environment of their own: the local stack, tests.
    """
    global _current
    with _lock:
        previous, _current = _current, value
    return previous


@contextmanager
def using(value: Settings) -> Iterator[Settings]:
    """``value`` as this process's settings for the block, then the previous ones again."""
    previous = use(value)
    try:
        yield value
    finally:
        use(previous)

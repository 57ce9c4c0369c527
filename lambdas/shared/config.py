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


def _setting(env: str, default: Any) -> Any:
    """A field of :class:`Settings` read from (and written to) the environment variable ``env``."""
    return field(default=default, metadata={"env": env})


@dataclass(frozen=True)
class Settings:
    """The deployment's settings (frozen and hashable: a value to build services from, and to cache them by)."""

    functions_table: str = _setting("IPOC_FUNCTIONS_TABLE", "ipoc-functions")
    instances_table: str = _setting("IPOC_INSTANCES_TABLE", "ipoc-instances")
    slots_table: str = _setting("IPOC_SLOTS_TABLE", "ipoc-slots")
    artifacts_bucket: str = _setting("IPOC_ARTIFACTS_BUCKET", "ipoc-artifacts")
    # The users' encrypted inputs; the S3 streamer's own role reads only the caller's prefix of it.
    inputs_bucket: str = _setting("IPOC_INPUTS_BUCKET", "ipoc-inputs")
    admin_principals: tuple[str, ...] = _setting("IPOC_ADMIN_PRINCIPALS", ())
    direct_upload_limit: int = _setting("IPOC_DIRECT_UPLOAD_LIMIT", DIRECT_UPLOAD_LIMIT)
    max_program_size: int = _setting("IPOC_MAX_PROGRAM_SIZE", 64 * 1024 * 1024)
    max_data_file_size: int = _setting("IPOC_MAX_DATA_FILE_SIZE", 2 * 1024 * 1024 * 1024)
    presigned_expiry: int = _setting("IPOC_PRESIGNED_EXPIRY", 3600)
    # VaaS
    backend: str = _setting("IPOC_VAAS_BACKEND", "local")
    port_min: int = _setting("IPOC_PORT_MIN", 3014)
    port_max: int = _setting("IPOC_PORT_MAX", 3023)
    endpoint_host: str = _setting("IPOC_ENDPOINT_HOST", "127.0.0.1")
    proxy_url: str = _setting("IPOC_PROXY_URL", "127.0.0.1:3010")
    proxy_cert: str = _setting("IPOC_PROXY_CERT", "")
    # In AWS the proxy CA lives in Secrets Manager (made by the deployment's setup function).
    proxy_cert_secret_arn: str = _setting("IPOC_PROXY_CERT_SECRET_ARN", "")
    runtime_hash: str = _setting("IPOC_RUNTIME_HASH", "")
    platform: str = _setting("IPOC_PLATFORM", "linux")
    state_dir: str = _setting("IPOC_STATE_DIR", "")
    # Local backend: runtimes kept started and attested ahead of their policy (0 disables the pool).
    warm_pool: int = _setting("IPOC_WARM_POOL", 2)
    kube_namespace: str = _setting("IPOC_K8S_NAMESPACE", "veracruz")
    runtime_image: str = _setting("IPOC_RUNTIME_IMAGE", "veracruz/veracruz-nitro:v1.3.3")
    runtime_pod_mib: int = _setting("IPOC_RUNTIME_POD_MIB", 500)
    runtime_cpu_millis: int = _setting("IPOC_RUNTIME_CPU_MILLIS", 1000)
    eks_cluster: str = _setting("IPOC_EKS_CLUSTER", "")
    kube_host: str = _setting("IPOC_K8S_HOST", "")
    kube_ca_file: str = _setting("IPOC_K8S_CA_FILE", "")
    # The cluster CA as EKS reports it (base64 PEM), when there is no file (Lambda).
    kube_ca_data: str = _setting("IPOC_K8S_CA_DATA", "")
    pod_ip_timeout: int = _setting("IPOC_POD_IP_TIMEOUT", POD_IP_TIMEOUT)
    # S3 streamer
    stream_chunk: int = _setting("IPOC_STREAM_CHUNK", 1024 * 1024)
    # Instance lifecycle
    state_machine_arn: str = _setting("IPOC_STATE_MACHINE_ARN", "")
    program_load_cert_file: str = _setting("IPOC_PROGRAM_LOAD_CERT_FILE", "")
    program_load_key_file: str = _setting("IPOC_PROGRAM_LOAD_KEY_FILE", "")
    program_load_secret_arn: str = _setting("IPOC_PROGRAM_LOAD_SECRET_ARN", "")
    default_ttl: int = _setting("IPOC_DEFAULT_TTL", 3600)
    max_ttl: int = _setting("IPOC_MAX_TTL", 24 * 3600)
    allocate_wait: int = _setting("IPOC_ALLOCATE_WAIT", 120)
    ready_timeout: int = _setting("IPOC_READY_TIMEOUT", 120)
    # POST /instance waits this long for READY unless ?wait= says otherwise (capped under API Gateway's 29 s).
    instance_wait: int = _setting("IPOC_INSTANCE_WAIT", 25)

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

"""Settings, read from environment variables once per process.

``infra/`` sets these on each Lambda; ``local/`` sets them for the embedded
stack. Every name and default is listed here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from ipoc.limits import DIRECT_UPLOAD_LIMIT

# Seconds VaaS waits for a new pod's IP: below API Gateway's 29 s integration timeout, as the original's
# 20 polls of 1 s.
POD_IP_TIMEOUT = 20


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _list(name: str, default: str = "") -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, default).split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    functions_table: str
    instances_table: str
    slots_table: str
    artifacts_bucket: str
    inputs_bucket: str
    admin_principals: tuple[str, ...]
    direct_upload_limit: int
    max_program_size: int
    max_data_file_size: int
    presigned_expiry: int
    # VaaS
    backend: str
    port_min: int
    port_max: int
    endpoint_host: str
    proxy_url: str
    proxy_cert: str
    proxy_cert_secret_arn: str
    runtime_hash: str
    platform: str
    state_dir: str
    warm_pool: int
    kube_namespace: str
    runtime_image: str
    runtime_pod_mib: int
    runtime_cpu_millis: int
    eks_cluster: str
    kube_host: str
    kube_ca_file: str
    kube_ca_data: str
    pod_ip_timeout: int
    # S3 streamer
    stream_chunk: int
    # Instance lifecycle
    state_machine_arn: str
    program_load_cert_file: str
    program_load_key_file: str
    program_load_secret_arn: str
    default_ttl: int
    max_ttl: int
    allocate_wait: int
    ready_timeout: int
    instance_wait: int


@cache
def settings() -> Settings:
    """The process's settings (cached: Lambda environments do not change while warm)."""
    return Settings(
        functions_table=os.environ.get("IPOC_FUNCTIONS_TABLE", "ipoc-functions"),
        instances_table=os.environ.get("IPOC_INSTANCES_TABLE", "ipoc-instances"),
        slots_table=os.environ.get("IPOC_SLOTS_TABLE", "ipoc-slots"),
        artifacts_bucket=os.environ.get("IPOC_ARTIFACTS_BUCKET", "ipoc-artifacts"),
        # The users' encrypted inputs; the S3 streamer's own role reads only the caller's prefix of it.
        inputs_bucket=os.environ.get("IPOC_INPUTS_BUCKET", "ipoc-inputs"),
        admin_principals=_list("IPOC_ADMIN_PRINCIPALS"),
        direct_upload_limit=_int("IPOC_DIRECT_UPLOAD_LIMIT", DIRECT_UPLOAD_LIMIT),
        max_program_size=_int("IPOC_MAX_PROGRAM_SIZE", 64 * 1024 * 1024),
        max_data_file_size=_int("IPOC_MAX_DATA_FILE_SIZE", 2 * 1024 * 1024 * 1024),
        presigned_expiry=_int("IPOC_PRESIGNED_EXPIRY", 3600),
        backend=os.environ.get("IPOC_VAAS_BACKEND", "local"),
        port_min=_int("IPOC_PORT_MIN", 3014),
        port_max=_int("IPOC_PORT_MAX", 3023),
        endpoint_host=os.environ.get("IPOC_ENDPOINT_HOST", "127.0.0.1"),
        proxy_url=os.environ.get("IPOC_PROXY_URL", "127.0.0.1:3010"),
        proxy_cert=os.environ.get("IPOC_PROXY_CERT", ""),
        # In AWS the proxy CA lives in Secrets Manager (made by the deployment's setup function).
        proxy_cert_secret_arn=os.environ.get("IPOC_PROXY_CERT_SECRET_ARN", ""),
        runtime_hash=os.environ.get("IPOC_RUNTIME_HASH", ""),
        platform=os.environ.get("IPOC_PLATFORM", "linux"),
        state_dir=os.environ.get("IPOC_STATE_DIR", ""),
        # Local backend: runtimes kept started and attested ahead of their policy (0 disables the pool).
        warm_pool=_int("IPOC_WARM_POOL", 2),
        kube_namespace=os.environ.get("IPOC_K8S_NAMESPACE", "veracruz"),
        runtime_image=os.environ.get("IPOC_RUNTIME_IMAGE", "veracruz/veracruz-nitro:v1.3.3"),
        runtime_pod_mib=_int("IPOC_RUNTIME_POD_MIB", 500),
        runtime_cpu_millis=_int("IPOC_RUNTIME_CPU_MILLIS", 1000),
        eks_cluster=os.environ.get("IPOC_EKS_CLUSTER", ""),
        kube_host=os.environ.get("IPOC_K8S_HOST", ""),
        kube_ca_file=os.environ.get("IPOC_K8S_CA_FILE", ""),
        # The cluster CA as EKS reports it (base64 PEM), when there is no file (Lambda).
        kube_ca_data=os.environ.get("IPOC_K8S_CA_DATA", ""),
        pod_ip_timeout=_int("IPOC_POD_IP_TIMEOUT", POD_IP_TIMEOUT),
        stream_chunk=_int("IPOC_STREAM_CHUNK", 1024 * 1024),
        state_machine_arn=os.environ.get("IPOC_STATE_MACHINE_ARN", ""),
        program_load_cert_file=os.environ.get("IPOC_PROGRAM_LOAD_CERT_FILE", ""),
        program_load_key_file=os.environ.get("IPOC_PROGRAM_LOAD_KEY_FILE", ""),
        program_load_secret_arn=os.environ.get("IPOC_PROGRAM_LOAD_SECRET_ARN", ""),
        default_ttl=_int("IPOC_DEFAULT_TTL", 3600),
        max_ttl=_int("IPOC_MAX_TTL", 24 * 3600),
        allocate_wait=_int("IPOC_ALLOCATE_WAIT", 120),
        ready_timeout=_int("IPOC_READY_TIMEOUT", 120),
        # POST /instance waits this long for READY unless ?wait= says otherwise (capped under API Gateway's 29 s).
        instance_wait=_int("IPOC_INSTANCE_WAIT", 25),
    )

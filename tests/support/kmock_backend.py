"""The kubernetes VaaS backend pointed at the kmock emulator, and the kubelet's part kmock lacks.

Used by tests/functional/lambdas/test_vaas_kubernetes.py and tests/reliability/test_faults.py.
"""

from __future__ import annotations

import asyncio
import json

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from lambdas.vaas.backends import RuntimeSetup, manifests
from lambdas.vaas.backends.kubernetes import KubernetesBackend

NAMESPACE = "veracruz"
SPEC = manifests.RuntimeSpec(
    namespace=NAMESPACE,
    image="veracruz/veracruz-nitro:v1.3.3",
    endpoint_host="ec2-1-2-3-4.compute.amazonaws.com",
    pod_mib=500,
    cpu_millis=1000,
)
POLICY = json.dumps({"max_memory_mib": 2000, "veracruz_server_url": "ec2-1-2-3-4.compute.amazonaws.com:3014"}, indent=4)
LABELS = {"veracruz-nitro": "server", "veracruz-hash": "a" * 59, "veracruz-id": "CCFaaS"}


def api_factory(url: str):
    def make() -> k8s.ApiClient:
        configuration = k8s.Configuration()
        configuration.host = url.rstrip("/")
        return k8s.ApiClient(configuration)

    return make


def backend_for(kmock, **overrides) -> KubernetesBackend:
    options = dict(pod_ip_timeout=10.0, poll_interval=0.05)
    options.update(overrides)
    return KubernetesBackend(
        api_client=api_factory(str(kmock.url)),
        spec=SPEC,
        setup=RuntimeSetup(
            proxy_url="proxy:3010",
            proxy_cert="",
            runtime_hash="00" * 32,
            platform="nitro",
            endpoint_host=SPEC.endpoint_host,
        ),
        **options,
    )


async def kubelet(kmock, name: str, ip: str = "10.0.3.7") -> None:
    """Give the pod an address once it exists, as the kubelet would."""
    core = k8s.CoreV1Api(api_factory(str(kmock.url))())
    for _ in range(400):
        try:
            await asyncio.to_thread(
                core.patch_namespaced_pod_status, name, NAMESPACE, {"status": {"podIP": ip, "phase": "Running"}}
            )
            return
        except ApiException:
            await asyncio.sleep(0.02)


def read(kmock, kind: str, name: str):
    api = api_factory(str(kmock.url))()
    readers = {
        "ConfigMap": lambda: k8s.CoreV1Api(api).read_namespaced_config_map(name, NAMESPACE),
        "Pod": lambda: k8s.CoreV1Api(api).read_namespaced_pod(name, NAMESPACE),
        "EndpointSlice": lambda: k8s.DiscoveryV1Api(api).read_namespaced_endpoint_slice(name, NAMESPACE),
    }
    try:
        return readers[kind]()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise

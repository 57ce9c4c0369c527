"""The kubernetes backend against the kmock Kubernetes emulator (a real HTTP server on loopback).

No cluster can run here, so kmock stands in for the API server; the test plays
the kubelet's one part the emulator lacks (giving the pod an IP). Every
manifest is also checked with kubernetes-validate.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlsplit

import boto3
import kubernetes_validate
import pytest

from ipoc.errors import DependencyFailed
from lambdas.vaas.backends import RuntimeSetup, manifests
from lambdas.vaas.backends.kubernetes import eks_token
from tests.support.kmock_backend import LABELS, NAMESPACE, POLICY, SPEC, backend_for, kubelet, read

K8S_VERSION = "1.33"


@pytest.mark.parametrize("builder", ["configmap", "pod", "endpoint_slice"])
def test_manifests_validate_against_the_kubernetes_schema(builder):
    manifest = getattr(manifests, builder)(SPEC, 3014, LABELS, "10.0.0.1" if builder == "endpoint_slice" else POLICY)
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_pod_requests_devices_and_hugepages_as_the_original():
    pod = manifests.pod(SPEC, 3014, LABELS, POLICY)
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["hugepages-2Mi"] == "976Mi" and limits["hugepages-1Gi"] == "1Gi"  # 2000 MiB
    assert limits["smarter-devices/nitro_enclaves"] == "1" and limits["smarter-devices/vsock"] == "1"
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["automountServiceAccountToken"] is False
    assert "ec2-1-2-3-4.compute.amazonaws.com" in pod["spec"]["containers"][0]["command"][2]


@pytest.mark.asyncio
async def test_start_creates_the_three_objects_and_stop_removes_them(kmock):
    backend = backend_for(kmock)
    name = manifests.object_name(3014)
    kubelet_task = asyncio.create_task(kubelet(kmock, name))
    facts = await asyncio.to_thread(backend.start, 3014, POLICY, LABELS)
    await kubelet_task
    assert facts == {"pod": name, "pod_ip": "10.0.3.7", "namespace": NAMESPACE}
    configmap = await asyncio.to_thread(read, kmock, "ConfigMap", name)
    assert configmap.data == {"policy.json": POLICY} and configmap.metadata.labels == LABELS
    pod = await asyncio.to_thread(read, kmock, "Pod", name)
    assert pod.metadata.labels == LABELS and pod.spec.containers[0].image == SPEC.image
    endpoint_slice = await asyncio.to_thread(read, kmock, "EndpointSlice", name)
    assert endpoint_slice.metadata.labels["kubernetes.io/service-name"] == "veracruz-nitro-server"
    assert endpoint_slice.endpoints[0].addresses == ["10.0.3.7"] and endpoint_slice.ports[0].port == 3014
    assert await asyncio.to_thread(backend.status, 3014, facts) == "running"

    await asyncio.to_thread(backend.stop, 3014, facts)
    for kind in ("ConfigMap", "Pod", "EndpointSlice"):
        assert await asyncio.to_thread(read, kmock, kind, name) is None
    assert await asyncio.to_thread(backend.status, 3014, facts) == "missing"
    await asyncio.to_thread(backend.stop, 3014, facts)  # idempotent


@pytest.mark.asyncio
async def test_a_pod_without_an_address_is_removed_with_its_configmap(kmock):
    backend = backend_for(kmock, pod_ip_timeout=0.3)
    with pytest.raises(DependencyFailed, match="got no IP address"):
        await asyncio.to_thread(backend.start, 3015, POLICY, LABELS)
    for kind in ("ConfigMap", "Pod", "EndpointSlice"):
        assert await asyncio.to_thread(read, kmock, kind, manifests.object_name(3015)) is None


@pytest.mark.asyncio
async def test_a_refused_endpoint_slice_removes_everything_created(kmock):
    kmock[f"post /apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"] << 403 << {"message": "forbidden"}
    backend = backend_for(kmock)
    name = manifests.object_name(3016)
    kubelet_task = asyncio.create_task(kubelet(kmock, name))
    with pytest.raises(DependencyFailed, match="refused to create the EndpointSlice: 403"):
        await asyncio.to_thread(backend.start, 3016, POLICY, LABELS)
    await kubelet_task
    for kind in ("ConfigMap", "Pod"):
        assert await asyncio.to_thread(read, kmock, kind, name) is None


@pytest.mark.asyncio
async def test_a_refused_configmap_creates_nothing(kmock):
    kmock[f"post /api/v1/namespaces/{NAMESPACE}/configmaps"] << 500 << {"message": "etcd down"}
    backend = backend_for(kmock)
    with pytest.raises(DependencyFailed, match="ConfigMap: 500"):
        await asyncio.to_thread(backend.start, 3017, POLICY, LABELS)
    assert await asyncio.to_thread(read, kmock, "Pod", manifests.object_name(3017)) is None


def test_eks_token_is_a_presigned_get_caller_identity_naming_the_cluster(monkeypatch):
    """Built offline with fake credentials, as `aws eks get-token` builds it; nothing is sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    sts = boto3.client("sts", region_name="eu-west-1")
    token = eks_token("ipoc-cluster", sts)
    assert token.startswith("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(token[len("k8s-aws-v1.") :] + "==").decode()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.hostname == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Expires"] == ["60"]


@pytest.mark.asyncio
async def test_vaas_on_kubernetes_allocates_creates_and_deletes(kmock, monkeypatch, ids):
    """VaaS's create and delete with slots in moto's DynamoDB and the objects in kmock."""
    from moto import mock_aws

    from lambdas.shared.stores import SlotStore
    from lambdas.vaas.service import VaaS
    from tests.support import policies
    from tests.support.aws import configure

    with mock_aws():
        configure(monkeypatch)
        backend = backend_for(kmock)
        backend.setup = RuntimeSetup(
            proxy_url="proxy:3010",
            proxy_cert=ids.loader.certificate,
            runtime_hash="00" * 32,
            platform="nitro",
            endpoint_host=SPEC.endpoint_host,
        )
        vaas = VaaS(SlotStore(), backend, 3014, 3014)
        policy = policies.vaas_policy([(ids.user, policies.USER_RIGHTS)])
        kubelet_task = asyncio.create_task(kubelet(kmock, manifests.object_name(3014)))
        reply = await asyncio.to_thread(vaas.create, policy)
        await kubelet_task
        configmap = await asyncio.to_thread(read, kmock, "ConfigMap", manifests.object_name(3014))
        assert configmap.data["policy.json"] == reply["policy"]  # the exact text, byte for byte
        assert configmap.metadata.labels["veracruz-hash"] == reply["instance_hash"]
        listed = await asyncio.to_thread(vaas.list)
        assert listed["veracruz"][0]["veracruz-nitro-server:3014"]["status"] == "OK"
        await asyncio.to_thread(vaas.delete, "veracruz-nitro-server:3014", "test", reply["instance_hash"])
        for kind in ("ConfigMap", "Pod", "EndpointSlice"):
            assert await asyncio.to_thread(read, kmock, kind, manifests.object_name(3014)) is None
        assert (await asyncio.to_thread(vaas.list)) == {"veracruz": []}

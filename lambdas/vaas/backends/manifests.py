"""The Kubernetes objects of one Veracruz instance (README "Deploying to AWS"), as plain manifests.

All three are named ``veracruz-nitro-server-<port>`` and carry the original's
labels; only the EndpointSlice also carries ``kubernetes.io/service-name`` so
that the selector-less Service ``veracruz-nitro-server`` routes the port to
this pod. Plain dicts, so tests can validate them with kubernetes-validate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SERVICE_NAME = "veracruz-nitro-server"
CONTAINER = "veracruz-nitro-server"
POLICY_DIR = "/work/veracruz-server-policy"
SERVER_BINARY = "/work/veracruz-server/veracruz-server"


def object_name(port: int) -> str:
    return f"{SERVICE_NAME}-{port}"


@dataclass(frozen=True)
class RuntimeSpec:
    namespace: str
    image: str
    endpoint_host: str
    pod_mib: int
    cpu_millis: int


def configmap(spec: RuntimeSpec, port: int, labels: dict[str, str], policy_text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": object_name(port), "namespace": spec.namespace, "labels": dict(labels)},
        "data": {"policy.json": policy_text},
    }


def pod(spec: RuntimeSpec, port: int, labels: dict[str, str], policy_text: str) -> dict[str, Any]:
    max_memory_mib = int(json.loads(policy_text)["max_memory_mib"])
    devices = {"smarter-devices/nitro_enclaves": "1", "smarter-devices/vsock": "1"}
    hugepages = {"hugepages-2Mi": f"{max_memory_mib % 1024}Mi", "hugepages-1Gi": f"{max_memory_mib // 1024}Gi"}
    # veracruz-server binds veracruz_server_url's host, so map the endpoint host to this pod's own address.
    command = (
        f'echo -e $(grep {SERVICE_NAME} /etc/hosts | cut -f 1)"\\t{spec.endpoint_host}" >> /etc/hosts;'
        f"exec {SERVER_BINARY} {POLICY_DIR}/policy.json"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": object_name(port), "namespace": spec.namespace, "labels": dict(labels)},
        "spec": {
            "serviceAccountName": "default",
            "automountServiceAccountToken": False,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "hostname": SERVICE_NAME,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": CONTAINER,
                    "image": spec.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/bash", "-c", command],
                    "ports": [{"containerPort": port, "name": f"veracruz-{port}", "protocol": "TCP"}],
                    "resources": {
                        "limits": {**devices, **hugepages, "memory": f"{spec.pod_mib}Mi", "cpu": f"{spec.cpu_millis}m"},
                        "requests": {**devices, **hugepages, "memory": "100Mi", "cpu": "10m"},
                    },
                    "volumeMounts": [
                        {"name": "hugepage-2mi", "mountPath": "/hugepages-2Mi"},
                        {"name": "hugepage-1gi", "mountPath": "/hugepages-1Gi"},
                        {"name": "policy", "mountPath": POLICY_DIR, "readOnly": True},
                        {"name": "nitro-enclaves", "mountPath": "/run/nitro_enclaves"},
                        {"name": "nitro-enclaves-log", "mountPath": "/var/log/nitro_enclaves"},
                    ],
                }
            ],
            "volumes": [
                {"name": "hugepage-2mi", "emptyDir": {"medium": "HugePages-2Mi"}},
                {"name": "hugepage-1gi", "emptyDir": {"medium": "HugePages-1Gi"}},
                {"name": "policy", "configMap": {"name": object_name(port)}},
                {"name": "nitro-enclaves", "hostPath": {"path": "/run/nitro_enclaves"}},
                {"name": "nitro-enclaves-log", "hostPath": {"path": "/var/log/nitro_enclaves"}},
            ],
        },
    }


def endpoint_slice(spec: RuntimeSpec, port: int, labels: dict[str, str], pod_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": object_name(port),
            "namespace": spec.namespace,
            "labels": {**labels, "kubernetes.io/service-name": SERVICE_NAME},
        },
        "addressType": "IPv4",
        "ports": [{"name": f"veracruz-{port}", "protocol": "TCP", "port": port}],
        "endpoints": [{"addresses": [pod_ip], "conditions": {"ready": True}}],
    }

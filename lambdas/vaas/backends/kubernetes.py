"""The Kubernetes backend: each instance is a ConfigMap, a Pod and an EndpointSlice on a Nitro node.

``start`` creates them in that order, waiting (bounded) for the pod's IP before
the slice; on any failure it deletes all three (a refused create may still have
left its object), so nothing outlives a failed start. ``stop`` deletes all
three and is idempotent. In AWS the backend authenticates to EKS with a token
derived from the function's IAM role (the scheme of ``aws eks get-token``).
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from ipoc.certs import write_private
from ipoc.errors import DependencyFailed
from lambdas.shared.config import POD_IP_TIMEOUT, settings
from lambdas.shared.identity import secret_text
from lambdas.vaas.backends import RuntimeBackend, RuntimeSetup, manifests

TOKEN_PREFIX = "k8s-aws-v1."
KINDS = ("ConfigMap", "Pod", "EndpointSlice")  # creation order
CLUSTER_HEADER = "x-k8s-aws-id"


def eks_token(cluster_name: str, sts_client: Any) -> str:
    """A bearer token for EKS: a presigned STS GetCallerIdentity URL naming the cluster."""

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_HEADER] = cluster_name

    sts_client.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    try:
        url = sts_client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    finally:
        sts_client.meta.events.unregister("before-sign.sts.GetCallerIdentity", add_cluster_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def ca_file_from_data(ca_data: str) -> str:
    """Write EKS's base64 cluster CA to a private temporary file once per process (urllib3 wants a path)."""
    pem = base64.b64decode(ca_data, validate=True)
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise RuntimeError("IPOC_K8S_CA_DATA is not a base64-encoded PEM certificate")
    digest = hashlib.sha256(pem).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"ipoc-eks-ca-{digest}.pem"
    if not path.exists():
        write_private(path, pem)
    return str(path)


def eks_api_client(host: str, ca_file: str, cluster_name: str) -> k8s.ApiClient:
    import boto3

    configuration = k8s.Configuration()
    configuration.host = host
    configuration.ssl_ca_cert = ca_file or None
    configuration.api_key = {"authorization": "Bearer " + eks_token(cluster_name, boto3.client("sts"))}
    return k8s.ApiClient(configuration)


@dataclass
class KubernetesBackend(RuntimeBackend):
    api_client: Callable[[], k8s.ApiClient]
    spec: manifests.RuntimeSpec
    setup: RuntimeSetup
    pod_ip_timeout: float = POD_IP_TIMEOUT
    poll_interval: float = 0.5

    @classmethod
    def from_settings(cls) -> KubernetesBackend:
        config = settings()
        if not (config.kube_host and config.eks_cluster):
            raise RuntimeError("the kubernetes backend needs IPOC_K8S_HOST and IPOC_EKS_CLUSTER")
        ca_file = config.kube_ca_file or (ca_file_from_data(config.kube_ca_data) if config.kube_ca_data else "")
        proxy_cert = config.proxy_cert or (
            secret_text(config.proxy_cert_secret_arn) if config.proxy_cert_secret_arn else ""
        )
        if not proxy_cert:
            raise RuntimeError("the kubernetes backend needs IPOC_PROXY_CERT or IPOC_PROXY_CERT_SECRET_ARN")
        return cls(
            api_client=lambda: eks_api_client(config.kube_host, ca_file, config.eks_cluster),
            spec=manifests.RuntimeSpec(
                namespace=config.kube_namespace,
                image=config.runtime_image,
                endpoint_host=config.endpoint_host,
                pod_mib=config.runtime_pod_mib,
                cpu_millis=config.runtime_cpu_millis,
            ),
            setup=RuntimeSetup(
                proxy_url=config.proxy_url,
                proxy_cert=proxy_cert,
                runtime_hash=config.runtime_hash,
                platform=config.platform,
                endpoint_host=config.endpoint_host,
            ),
            pod_ip_timeout=float(config.pod_ip_timeout),
        )

    def runtime_setup(self) -> RuntimeSetup:
        return self.setup

    def start(self, port: int, policy_text: str, labels: dict[str, str]) -> dict[str, Any]:
        with self.api_client() as api:
            core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
            namespace, name = self.spec.namespace, manifests.object_name(port)
            try:
                self._create(
                    "ConfigMap",
                    lambda: core.create_namespaced_config_map(
                        namespace, manifests.configmap(self.spec, port, labels, policy_text)
                    ),
                )
                self._create(
                    "Pod",
                    lambda: core.create_namespaced_pod(namespace, manifests.pod(self.spec, port, labels, policy_text)),
                )
                pod_ip = self._wait_for_pod_ip(core, name)
                self._create(
                    "EndpointSlice",
                    lambda: discovery.create_namespaced_endpoint_slice(
                        namespace, manifests.endpoint_slice(self.spec, port, labels, pod_ip)
                    ),
                )
            except BaseException as failure:
                # A refused or lost create may still have left its object (the server committed, the answer
                # was lost): the slot makes this port's names ours, so remove all three, ignoring 404s.
                try:
                    self._delete(api, port, list(KINDS))
                except DependencyFailed as cleanup:
                    if isinstance(failure, DependencyFailed):
                        raise DependencyFailed(
                            f"{failure.message}; cleaning up also failed: {cleanup.message}"
                        ) from None
                    raise
                raise
        return {"pod": name, "pod_ip": pod_ip, "namespace": namespace}

    def stop(self, port: int, facts: dict[str, Any]) -> None:
        with self.api_client() as api:
            self._delete(api, port, list(KINDS))

    def status(self, port: int, facts: dict[str, Any]) -> str:
        with self.api_client() as api:
            try:
                pod = k8s.CoreV1Api(api).read_namespaced_pod(manifests.object_name(port), self.spec.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return "missing"
                raise DependencyFailed(
                    f"Kubernetes: reading pod {manifests.object_name(port)} failed: {exc.status} {exc.reason}"
                ) from None
        phase = (pod.status.phase if pod.status else None) or "Pending"
        return {"Running": "running", "Pending": "starting", "Succeeded": "exited", "Failed": "died"}.get(
            phase, "missing"
        )

    # -- helpers -------------------------------------------------------------------

    def _create(self, kind: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except ApiException as exc:
            raise DependencyFailed(f"Kubernetes refused to create the {kind}: {exc.status} {exc.reason}") from None

    def _wait_for_pod_ip(self, core: k8s.CoreV1Api, name: str) -> str:
        deadline = time.monotonic() + self.pod_ip_timeout
        while True:
            try:
                pod = core.read_namespaced_pod_status(name, self.spec.namespace)
            except ApiException as exc:
                raise DependencyFailed(
                    f"Kubernetes: reading the status of pod {name} failed: {exc.status} {exc.reason}"
                ) from None
            status = pod.status
            if status is not None and status.pod_ip:
                return status.pod_ip
            if status is not None and status.phase in ("Failed", "Succeeded"):
                raise DependencyFailed(f"pod {name} ended ({status.phase}) before it got an address")
            if time.monotonic() > deadline:
                raise DependencyFailed(
                    f"pod {name} got no IP address within {self.pod_ip_timeout:g} s "
                    "(is a Nitro node with a free enclave available?)"
                )
            time.sleep(self.poll_interval)

    def _delete(self, api: k8s.ApiClient, port: int, kinds: list[str]) -> None:
        core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
        namespace, name = self.spec.namespace, manifests.object_name(port)
        deleters = {
            "EndpointSlice": lambda: discovery.delete_namespaced_endpoint_slice(name, namespace),
            "Pod": lambda: core.delete_namespaced_pod(name, namespace),
            "ConfigMap": lambda: core.delete_namespaced_config_map(name, namespace),
        }
        failures = []
        for kind in ("EndpointSlice", "Pod", "ConfigMap"):  # reverse of creation
            if kind not in kinds:
                continue
            try:
                deleters[kind]()
            except ApiException as exc:
                if exc.status != 404:
                    failures.append(f"{kind}: {exc.status} {exc.reason}")
        if failures:
            raise DependencyFailed(f"Kubernetes: could not delete every object of {name}: {'; '.join(failures)}")

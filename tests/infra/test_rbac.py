"""The control plane's Kubernetes rights, checked against what its code really calls.

The calls are recorded while the VaaS kubernetes backend's own functional tests
run against kmock (tests/infra/k8s_calls.py, in a subprocess); the rights are
the chart's rendered RBAC for the group the VaaS, task and reaper roles are
mapped to (tests/infra/rbac.py follows the API server's rule). What RBAC cannot
express — which pods the group may create — is the chart's
ValidatingAdmissionPolicies, whose CEL expressions are evaluated here by a CEL
implementation we did not write (common-expression-language) against the pod
the backend builds and against an attacker's pods.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import cel
import pytest
import yaml

from infra.constructs.cluster import PROXY_NAMESPACE, RUNTIME_NAMESPACE, VAAS_GROUP
from lambdas.vaas.backends import manifests
from tests.infra.k8s_calls import Call
from tests.infra.rbac import allowed, allows, grants
from tests.infra.test_chart import by_kind, render

ROOT = Path(__file__).resolve().parents[2]
BACKEND_TESTS = "tests/functional/lambdas/test_vaas_kubernetes.py"


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render().stdout) if doc]


@pytest.fixture(scope="module")
def backend_calls(tmp_path_factory: pytest.TempPathFactory) -> set[Call]:
    """Run the backend's tests once with the recorder on; every distinct call they made."""
    log = tmp_path_factory.mktemp("k8s") / "calls.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.infra.k8s_calls", "-p", "no:cacheprovider", BACKEND_TESTS],
        cwd=ROOT,
        env={**os.environ, "IPOC_K8S_CALLS": str(log)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    calls = {Call(**json.loads(line)) for line in log.read_text().splitlines()}
    assert {c.verb for c in calls} >= {"create", "get", "delete"}, calls  # the recorder saw the backend
    return calls


def proxy_namespace(objects: list[dict]) -> str:
    return by_kind(objects, "Deployment", "veracruz-nitro-proxy")["metadata"]["namespace"]


def unused_or_wild_grants(objects: list[dict], calls: set[Call]) -> list[str]:
    problems = []
    for grant in grants(objects, VAAS_GROUP):
        if "*" in (grant.group, grant.resource, grant.verb) or grant.namespace == "":
            problems.append(f"wildcard or cluster-wide grant: {grant}")
        elif not any(allows(grant, call) for call in calls):
            problems.append(
                f"granted but never called by the backend: {grant.verb} {grant.resource} in {grant.namespace}"
            )
    return problems


def pod_creation_outside_the_runtime_namespace(objects: list[dict]) -> list[str]:
    namespaces = {o["metadata"].get("namespace", "") for o in objects} | {
        o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"
    }
    return [
        f"{VAAS_GROUP} may create {kind} in {ns}"
        for ns in sorted((namespaces | {PROXY_NAMESPACE}) - {"", RUNTIME_NAMESPACE})
        for kind in ("pods", "deployments", "serviceaccounts/token")
        if allowed(objects, VAAS_GROUP, Call("create", "apps" if kind == "deployments" else "", kind, ns, ""))
    ]


def test_every_kubernetes_call_of_the_backend_is_allowed(objects: list[dict], backend_calls: set[Call]) -> None:
    refused = sorted(
        f"{c.verb} {c.resource} in {c.namespace}" for c in backend_calls if not allowed(objects, VAAS_GROUP, c)
    )
    assert refused == []


def test_nothing_more_is_granted_than_the_backend_calls(objects: list[dict], backend_calls: set[Call]) -> None:
    assert unused_or_wild_grants(objects, backend_calls) == []
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_the_control_plane_cannot_create_pods_where_the_proxy_runs(objects: list[dict], platform_json: dict) -> None:
    """Defect 2: the proxy, its service account and its Pod Identity live where the VaaS group creates nothing."""
    namespace = proxy_namespace(objects)
    assert namespace == PROXY_NAMESPACE != RUNTIME_NAMESPACE
    assert by_kind(objects, "ServiceAccount", "veracruz-proxy")["metadata"]["namespace"] == namespace
    [association] = [
        r["Properties"] for r in platform_json["Resources"].values() if r["Type"] == "AWS::EKS::PodIdentityAssociation"
    ]
    assert (association["Namespace"], association["ServiceAccount"]) == (namespace, "veracruz-proxy")
    assert pod_creation_outside_the_runtime_namespace(objects) == []
    namespace_labels = by_kind(objects, "Namespace", namespace)["metadata"]["labels"]
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_granting_create_pods_in_the_proxy_namespace_is_caught(objects: list[dict], backend_calls: set[Call]) -> None:
    """The checks above fail when someone adds such a grant (here: a Role and RoleBinding added to the chart)."""
    namespace = proxy_namespace(objects)
    granted = copy.deepcopy(objects) + [
        {
            "kind": "Role",
            "metadata": {"name": "oops", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
        },
        {
            "kind": "RoleBinding",
            "metadata": {"name": "oops", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "oops"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": VAAS_GROUP}],
        },
    ]
    assert pod_creation_outside_the_runtime_namespace(granted) == [f"{VAAS_GROUP} may create pods in {namespace}"]
    assert unused_or_wild_grants(granted, backend_calls) == [
        f"granted but never called by the backend: create pods in {namespace}"
    ]


# -- the admission policies: which pods and EndpointSlices the group may create ----------------------------


def policy(objects: list[dict], name: str) -> dict:
    return by_kind(objects, "ValidatingAdmissionPolicy", name)["spec"]


def refusals(objects: list[dict], name: str, obj: dict, groups: list[str] | None = None) -> list[str]:
    """The messages of the validations ``obj`` fails ([] when admitted or when the policy does not match)."""
    spec = policy(objects, name)
    context = {
        "object": obj,
        "request": {"userInfo": {"groups": groups or [VAAS_GROUP, "system:authenticated"]}, "operation": "CREATE"},
    }
    if not all(cel.evaluate(c["expression"], context) for c in spec["matchConditions"]):
        return []
    return [v["message"] for v in spec["validations"] if not cel.evaluate(v["expression"], context)]


def runtime_spec(objects: list[dict]) -> manifests.RuntimeSpec:
    image = yaml.safe_load((ROOT / "eks" / "ipoc" / "values.yaml").read_text())["runtimeImage"]
    return manifests.RuntimeSpec(
        namespace=RUNTIME_NAMESPACE, image=image, endpoint_host="nlb.example.com", pod_mib=500, cpu_millis=1000
    )


def backend_pod(objects: list[dict]) -> dict:
    return manifests.pod(
        runtime_spec(objects), 3014, {"veracruz-nitro": "server"}, json.dumps({"max_memory_mib": 2000})
    )


def test_the_policies_bind_to_the_runtime_namespace_and_deny(objects: list[dict]) -> None:
    bindings = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert sorted(b["spec"]["policyName"] for b in bindings) == [
        "ipoc-vaas-runtime-endpoints",
        "ipoc-vaas-runtime-pods",
    ]
    for binding in bindings:
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": RUNTIME_NAMESPACE
        }
    assert policy(objects, "ipoc-vaas-runtime-pods")["failurePolicy"] == "Fail"


def test_the_pod_the_backend_builds_is_admitted(objects: list[dict]) -> None:
    assert refusals(objects, "ipoc-vaas-runtime-pods", backend_pod(objects)) == []


def _with(pod: dict, change) -> dict:  # noqa: ANN001 - a small mutation of the manifest
    changed = copy.deepcopy(pod)
    change(changed["spec"])
    return changed


ATTACKS = {
    "the proxy's service account": lambda s: s.update(serviceAccountName="veracruz-proxy"),
    "a mounted token": lambda s: s.update(automountServiceAccountToken=True),
    "the host's network": lambda s: s.update(hostNetwork=True),
    "the host's PIDs": lambda s: s.update(hostPID=True),
    "the host's root": lambda s: s["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
    "a secret": lambda s: s["volumes"].append({"name": "s", "secret": {"secretName": "x"}}),
    "a projected token": lambda s: s["volumes"].append(
        {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
    ),
    "another image": lambda s: s["containers"][0].update(image="alpine:3"),
    "a second container": lambda s: s["containers"].append({**s["containers"][0], "name": "two"}),
    "an init container": lambda s: s.update(initContainers=[{"name": "i", "image": "alpine:3"}]),
    "privileged": lambda s: s["containers"][0].update(securityContext={"privileged": True}),
    "added capabilities": lambda s: s["containers"][0].update(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attackers_pod_is_refused(objects: list[dict], attack: str) -> None:
    assert refusals(objects, "ipoc-vaas-runtime-pods", _with(backend_pod(objects), ATTACKS[attack])) != []


def test_other_users_are_not_matched(objects: list[dict]) -> None:
    pod = _with(backend_pod(objects), ATTACKS["privileged"])
    assert refusals(objects, "ipoc-vaas-runtime-pods", pod, groups=["system:masters"]) == []


def test_endpoint_slices_route_only_runtime_ports_of_the_runtime_service(objects: list[dict]) -> None:
    name = "ipoc-vaas-runtime-endpoints"
    spec = runtime_spec(objects)
    good = manifests.endpoint_slice(spec, 3014, {"veracruz-nitro": "server"}, "10.0.3.7")
    assert refusals(objects, name, good) == []
    to_the_proxy = copy.deepcopy(good)
    to_the_proxy["ports"][0]["port"] = 3010
    assert refusals(objects, name, to_the_proxy) == ["EndpointSlices carry runtime ports only"]
    other_service = copy.deepcopy(good)
    other_service["metadata"]["labels"]["kubernetes.io/service-name"] = "kubernetes"
    assert refusals(objects, name, other_service) == ["EndpointSlices route the runtime Service only"]

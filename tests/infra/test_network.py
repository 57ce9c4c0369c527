"""Every dependency a control-plane Lambda reaches has a network path in the synthesized templates.

What each Lambda reaches is derived, not listed by hand: the AWS services its
role is granted actions on (tests/deploy proves the grants cover every call the
code makes), the EKS API for the roles with an EKS access entry, the runtime
load balancer for handlers whose imports reach the Veracruz client, and
CloudWatch Logs and X-Ray for every function. The paths are read from the
templates in cdk.out (see tests/infra/network.py for the rules).
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
import yaml

from infra.constructs.cluster import CHART
from tests.infra.network import EKS_API, ENDPOINT_SERVICE, RUNTIME_NLB, Network, chart_values

ROOT = Path(__file__).resolve().parents[2]
VERACRUZ_CLIENT = "ipoc.client"


def imports(module: str, seen: set[str] | None = None) -> set[str]:
    """Our modules ``module`` imports, transitively (an AST walk: nothing is executed)."""
    seen = seen if seen is not None else set()
    if module in seen:
        return seen
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    if not path.exists():
        return seen
    seen.add(module)
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            if name.split(".")[0] in ("ipoc", "lambdas"):
                imports(name, seen)
    return seen


def dependencies(network: Network) -> dict[str, dict[str, str]]:
    eks_roles = network.eks_mapped_roles()
    found = {}
    for fn in network.lambdas():
        deps = {"CloudWatch Logs": "every function logs", "X-Ray": "active tracing", **network.granted_services(fn)}
        if fn.role in eks_roles:
            deps[EKS_API] = "its role has an EKS access entry"
            deps["STS"] = "its EKS token is a presigned STS GetCallerIdentity (boto3 resolves the regional endpoint)"
        handler = network.resource((fn.stack, fn.name, "Ref"))["Properties"]["Handler"].rsplit(".", 1)[0]
        if VERACRUZ_CLIENT in imports(handler):
            deps[RUNTIME_NLB] = f"{handler} imports the Veracruz client"
        found[fn.name] = deps
    return found


def unreachable(network: Network, values: dict) -> list[str]:
    reached = dependencies(network)
    missing = []
    for fn in network.lambdas():
        for dependency, why in reached[fn.name].items():
            if dependency == EKS_API:
                path = network.path_to_eks_api(fn)
            elif dependency == RUNTIME_NLB:
                path = network.path_to_runtime(fn, values)
            else:
                path = network.path_to_aws_service(fn, dependency)
            if path is None:
                missing.append(f"{fn.name} cannot reach {dependency} ({why})")
    return missing


@pytest.fixture(scope="module")
def values(templates: dict[str, dict]) -> dict:
    return chart_values(templates, yaml.safe_load((CHART / "values.yaml").read_text()))


def test_every_lambda_reaches_every_dependency(templates: dict[str, dict], values: dict) -> None:
    network = Network(templates)
    assert unreachable(network, values) == []


def test_the_derived_dependencies_are_the_ones_the_code_has(templates: dict[str, dict]) -> None:
    """The derivation itself: the EKS-mapped functions and the runtime's clients are the expected ones."""
    deps = dependencies(Network(templates))
    by_handler = {name.removeprefix("ControlPlane").rstrip("0123456789ABCDEF"): d for name, d in deps.items()}
    assert sorted(n for n, d in by_handler.items() if EKS_API in d) == ["Reaper", "Tasks", "Vaas"]
    assert {"S3Stream", "Tasks"} <= {n for n, d in by_handler.items() if RUNTIME_NLB in d}
    assert {"DynamoDB", "Secrets Manager", "Step Functions", "S3"} <= set(by_handler["Tasks"])
    reached = {d for deps in by_handler.values() for d in deps}
    assert {"S3", "DynamoDB", "Step Functions", "Secrets Manager", "STS", "CloudWatch Logs", "X-Ray"} <= reached
    assert reached - {EKS_API, RUNTIME_NLB} <= set(ENDPOINT_SERVICE)


def test_without_the_443_ingress_the_eks_api_is_unreachable(templates: dict[str, dict], values: dict) -> None:
    """Defect 1 as it was: drop every rule admitting the Lambdas into the cluster's groups."""
    cut = copy.deepcopy(templates)
    platform = cut["Ipoc"]["Resources"]
    removed = [
        rid
        for rid, r in platform.items()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
        and "ControlPlaneSecurityGroup" in str(r["Properties"].get("SourceSecurityGroupId"))
    ]
    assert removed, "the ingress from the control-plane Lambdas into the cluster is not in the template"
    for rid in removed:
        del platform[rid]
    missing = unreachable(Network(cut), values)
    assert sorted(
        m.split(" cannot")[0].removeprefix("ControlPlane").rstrip("0123456789ABCDEF") for m in missing if EKS_API in m
    ) == ["Reaper", "Tasks", "Vaas"]


def test_without_the_nat_route_the_runtime_is_unreachable(templates: dict[str, dict], values: dict) -> None:
    cut = copy.deepcopy(templates)
    network_resources = cut["IpocNetwork"]["Resources"]
    for rid in [
        rid
        for rid, r in network_resources.items()
        if r["Type"] == "AWS::EC2::Route" and "NatGatewayId" in r["Properties"]
    ]:
        del network_resources[rid]
    missing = unreachable(Network(cut), values)
    assert any(RUNTIME_NLB in m for m in missing) and not any("DynamoDB" in m or "S3 (" in m for m in missing)


def test_the_eks_api_is_private_and_admits_only_our_lambdas_and_its_own_group(templates: dict[str, dict]) -> None:
    network = Network(templates)
    [(stack, rid, cluster)] = network.resources("AWS::EKS::Cluster")
    config = cluster["Properties"]["ResourcesVpcConfig"]
    assert config["EndpointPrivateAccess"] is True and config["EndpointPublicAccess"] is False
    lambda_groups = {g for fn in network.lambdas() for g in fn.security_groups}
    groups = [
        (stack, rid, "ClusterSecurityGroupId"),
        *[network.group(network.resolve(g, stack)) for g in config["SecurityGroupIds"]],
    ]
    for group in groups:
        for rule in network.ingress.get(group, []):
            assert rule.peer in lambda_groups | {groups[0]}, (group, rule)
            assert rule.peer == groups[0] or (rule.low, rule.high, rule.protocol) == (443, 443, "tcp"), rule

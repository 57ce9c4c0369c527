"""Reachability over synthesized CloudFormation: can a Lambda in the VPC reach what its code calls?

Read from the templates in cdk.out, not from our constructs, so a path exists
only if CloudFormation would create it. A dependency is reachable when the
Lambda's security groups let the packets out (egress) and one of these carries
them: a gateway endpoint on its subnets' route tables, an interface endpoint
with private DNS whose security group admits them, the target's own security
group (the EKS API's private endpoint), or the subnets' default route through
a NAT gateway (for public addresses). AWS facts we encode, since no template
says them: EKS makes a cluster security group that admits all traffic from
itself, and a private EKS endpoint resolves to ENIs in the cluster's groups.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

HTTPS = 443
ANYWHERE = "0.0.0.0/0"
# Interface/gateway endpoint service suffix (com.amazonaws.<region>.<suffix>) of each AWS dependency.
ENDPOINT_SERVICE = {
    "S3": "s3",
    "DynamoDB": "dynamodb",
    "Step Functions": "states",
    "Secrets Manager": "secretsmanager",
    "STS": "sts",
    "CloudWatch Logs": "logs",
    "X-Ray": "xray",
    # Not called today; listed so a new grant finds its endpoint, or falls back to the NAT route.
    "EKS": "eks",
    "KMS": "kms",
    "Lambda": "lambda",
    "CloudWatch": "monitoring",
    "SNS": "sns",
    "SQS": "sqs",
}
# IAM action prefix -> the dependency a Lambda granted that action talks to.
IAM_SERVICE = {
    "s3": "S3",
    "dynamodb": "DynamoDB",
    "states": "Step Functions",
    "secretsmanager": "Secrets Manager",
    "sts": "STS",
    "logs": "CloudWatch Logs",
    "xray": "X-Ray",
    "eks": "EKS",
    "kms": "KMS",
    "lambda": "Lambda",
    "cloudwatch": "CloudWatch",
    "sns": "SNS",
    "sqs": "SQS",
}
EKS_API = "EKS API"
RUNTIME_NLB = "runtime NLB"

Key = tuple[str, str, str]  # (stack, logical id, attribute): ("Ipoc", "ControlPlaneSecurityGroup…", "GroupId")


@dataclass(frozen=True)
class Rule:
    protocol: str  # "-1" (all) or "tcp"/"6", "udp", ...
    low: int
    high: int
    peer: Any  # a Key (security group), a CIDR string, a Key of a CIDR attribute (the VPC's CidrBlock) or a prefix list

    def carries(self, port: int) -> bool:
        return self.protocol == "-1" or (self.protocol in ("tcp", "6") and self.low <= port <= self.high)


@dataclass
class Lambda:
    name: str  # logical id
    stack: str
    security_groups: list[Key]
    subnets: list[Key]
    environment: dict[str, Any]
    role: str


class Network:
    """The stacks' templates, with cross-stack references resolved."""

    def __init__(self, templates: dict[str, dict]) -> None:
        self.templates = templates
        self.ingress: dict[Key, list[Rule]] = {}
        self.egress: dict[Key, list[Rule]] = {}
        self._collect_rules()

    # -- references -----------------------------------------------------------------------
    def resolve(self, value: Any, stack: str) -> Any:
        """A Key for Ref/GetAtt (following cross-stack outputs), the literal otherwise."""
        if isinstance(value, dict) and len(value) == 1:
            [(fn, arg)] = value.items()
            if fn == "Ref":
                return (stack, arg, "Ref")
            if fn == "Fn::GetAtt":
                return (stack, arg[0], arg[1])
            if fn == "Fn::GetStackOutput":
                other = arg["StackName"]
                return self.resolve(self.templates[other]["Outputs"][arg["OutputName"]]["Value"], other)
            if fn == "Fn::ImportValue":
                for name, template in self.templates.items():
                    for output in template.get("Outputs", {}).values():
                        if output.get("Export", {}).get("Name") == arg:
                            return self.resolve(output["Value"], name)
        return value

    def resource(self, key: Key) -> dict:
        return self.templates[key[0]]["Resources"][key[1]]

    def resources(self, kind: str) -> list[tuple[str, str, dict]]:
        return [
            (stack, rid, r)
            for stack, t in self.templates.items()
            for rid, r in t["Resources"].items()
            if r["Type"] == kind
        ]

    @staticmethod
    def group(key: Key) -> Key:
        """Ref and GetAtt GroupId name the same security group."""
        return (key[0], key[1], "GroupId") if key[2] == "Ref" else key

    # -- security groups ------------------------------------------------------------------
    def _rule(self, raw: dict, stack: str, peer_keys: tuple[str, ...]) -> Rule:
        peer: Any = None
        for name in peer_keys:
            if name in raw:
                peer = self.resolve(raw[name], stack)
                if isinstance(peer, tuple) and name.endswith("SecurityGroupId"):
                    peer = self.group(peer)
                break
        protocol = str(raw["IpProtocol"])
        return Rule(protocol, int(raw.get("FromPort", 0)), int(raw.get("ToPort", 65535)), peer)

    def _collect_rules(self) -> None:
        ingress_peers = ("CidrIp", "SourceSecurityGroupId", "SourcePrefixListId")
        egress_peers = ("CidrIp", "DestinationSecurityGroupId", "DestinationPrefixListId")
        for stack, rid, r in self.resources("AWS::EC2::SecurityGroup"):
            key = (stack, rid, "GroupId")
            props = r["Properties"]
            self.ingress.setdefault(key, []).extend(
                self._rule(x, stack, ingress_peers) for x in props.get("SecurityGroupIngress", [])
            )
            self.egress.setdefault(key, []).extend(
                self._rule(x, stack, egress_peers) for x in props.get("SecurityGroupEgress", [])
            )
        for kind, table, peers in (
            ("AWS::EC2::SecurityGroupIngress", self.ingress, ingress_peers),
            ("AWS::EC2::SecurityGroupEgress", self.egress, egress_peers),
        ):
            for stack, _, r in self.resources(kind):
                key = self.group(self.resolve(r["Properties"]["GroupId"], stack))
                table.setdefault(key, []).append(self._rule(r["Properties"], stack, peers))
        for stack, rid, _ in self.resources("AWS::EKS::Cluster"):
            # EKS creates this group and lets its members talk to each other (AWS behaviour, not in the template).
            key = (stack, rid, "ClusterSecurityGroupId")
            self.ingress.setdefault(key, []).append(Rule("-1", 0, 65535, key))

    def _cidr(self, peer: Any) -> str | None:
        if isinstance(peer, str):
            return peer
        if isinstance(peer, tuple) and peer[2] == "CidrBlock":
            return self.resource(peer)["Properties"]["CidrBlock"]
        return None

    def _covers(self, peer: Any, groups: list[Key], cidrs: list[str]) -> bool:
        """Does a rule's peer include a host that is in one of ``groups`` and in one of ``cidrs``?"""
        if peer in groups:
            return True
        cidr = self._cidr(peer)
        if cidr is None or not cidrs:
            return False
        return all(_subnet_of(c, cidr) for c in cidrs)

    def allows_out(self, source: Lambda, port: int, target_groups: list[Key], target_cidrs: list[str]) -> bool:
        return any(
            rule.carries(port) and self._covers(rule.peer, target_groups, target_cidrs)
            for group in source.security_groups
            for rule in self.egress.get(group, [])
        )

    def allows_in(self, target_groups: list[Key], port: int, source: Lambda) -> bool:
        cidrs = [self.subnet_cidr(s) for s in source.subnets]
        return any(
            rule.carries(port) and self._covers(rule.peer, source.security_groups, cidrs)
            for group in target_groups
            for rule in self.ingress.get(group, [])
        )

    # -- routes ---------------------------------------------------------------------------
    def subnet_cidr(self, subnet: Key) -> str:
        return self.resource(subnet)["Properties"]["CidrBlock"]

    def route_table(self, subnet: Key) -> Key:
        [table] = [
            self.resolve(r["Properties"]["RouteTableId"], s)
            for s, _, r in self.resources("AWS::EC2::SubnetRouteTableAssociation")
            if self.resolve(r["Properties"]["SubnetId"], s) == subnet
        ]
        return table

    def default_route_via_nat(self, subnet: Key) -> bool:
        table = self.route_table(subnet)
        return any(
            self.resolve(r["Properties"]["RouteTableId"], s) == table
            and r["Properties"].get("DestinationCidrBlock") == ANYWHERE
            and "NatGatewayId" in r["Properties"]
            for s, _, r in self.resources("AWS::EC2::Route")
        )

    def endpoints(self, suffix: str) -> list[tuple[str, dict]]:
        found = []
        for stack, _, r in self.resources("AWS::EC2::VPCEndpoint"):
            name = r["Properties"]["ServiceName"]
            text = name if isinstance(name, str) else name["Fn::Join"][1][-1]
            if text.endswith("." + suffix):
                found.append((stack, r["Properties"]))
        return found

    # -- the Lambdas and what they reach --------------------------------------------------
    def lambdas(self, handler_prefix: str = "lambdas.") -> list[Lambda]:
        found = []
        for stack, rid, r in self.resources("AWS::Lambda::Function"):
            props = r["Properties"]
            if not str(props.get("Handler", "")).startswith(handler_prefix) or "VpcConfig" not in props:
                continue
            vpc = props["VpcConfig"]
            found.append(
                Lambda(
                    name=rid,
                    stack=stack,
                    security_groups=[self.group(self.resolve(g, stack)) for g in vpc["SecurityGroupIds"]],
                    subnets=[self.resolve(s, stack) for s in vpc["SubnetIds"]],
                    environment=props.get("Environment", {}).get("Variables", {}),
                    role=props["Role"]["Fn::GetAtt"][0],
                )
            )
        return found

    def granted_services(self, fn: Lambda) -> dict[str, str]:
        """The AWS services the Lambda's role is granted actions on (IAM ⊇ what the code calls: tests/deploy proves
        it)."""
        services: dict[str, str] = {}
        for stack, _, r in self.resources("AWS::IAM::Policy"):
            if stack != fn.stack or {"Ref": fn.role} not in r["Properties"].get("Roles", []):
                continue
            for statement in r["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    prefix = action.split(":")[0]
                    if prefix not in IAM_SERVICE:
                        raise AssertionError(
                            f"{fn.name} is granted {action}: add {prefix!r} to IAM_SERVICE and ENDPOINT_SERVICE"
                        )
                    services.setdefault(IAM_SERVICE[prefix], f"its role is granted {action}")
        return services

    def eks_mapped_roles(self) -> set[str]:
        return {
            r["Properties"]["PrincipalArn"]["Fn::GetAtt"][0]
            for _, _, r in self.resources("AWS::EKS::AccessEntry")
            if isinstance(r["Properties"]["PrincipalArn"], dict) and "Fn::GetAtt" in r["Properties"]["PrincipalArn"]
        }

    # -- paths ----------------------------------------------------------------------------
    def path_to_aws_service(self, fn: Lambda, dependency: str) -> str | None:
        suffix = ENDPOINT_SERVICE[dependency]
        for stack, props in self.endpoints(suffix):
            if props.get("VpcEndpointType") == "Gateway":
                tables = [self.resolve(t, stack) for t in props.get("RouteTableIds", [])]
                if all(self.route_table(s) in tables for s in fn.subnets) and self.allows_out(
                    fn, HTTPS, [], [ANYWHERE]
                ):
                    return f"gateway endpoint {suffix}"
            elif props.get("PrivateDnsEnabled"):
                groups = [self.group(self.resolve(g, stack)) for g in props.get("SecurityGroupIds", [])]
                vpc_cidr = self.resource(self.resolve(props["VpcId"], stack))["Properties"]["CidrBlock"]
                if self.allows_out(fn, HTTPS, groups, [vpc_cidr]) and self.allows_in(groups, HTTPS, fn):
                    return f"interface endpoint {suffix}"
        if all(self.default_route_via_nat(s) for s in fn.subnets) and self.allows_out(fn, HTTPS, [], [ANYWHERE]):
            return "NAT gateway"
        return None

    def path_to_eks_api(self, fn: Lambda) -> str | None:
        [(stack, rid, cluster)] = self.resources("AWS::EKS::Cluster")
        config = cluster["Properties"]["ResourcesVpcConfig"]
        if config.get("EndpointPrivateAccess"):
            # Inside the VPC the endpoint's name resolves to ENIs carrying the cluster's groups.
            groups = [
                (stack, rid, "ClusterSecurityGroupId"),
                *[self.group(self.resolve(g, stack)) for g in config.get("SecurityGroupIds", [])],
            ]
            addresses = [self.subnet_cidr(self.resolve(s, stack)) for s in config["SubnetIds"]]  # where its ENIs live
            if self.allows_out(fn, HTTPS, groups, addresses) and self.allows_in(groups, HTTPS, fn):
                return "the cluster security group's ingress on 443"
            return None
        public = config.get("PublicAccessCidrs", [ANYWHERE])
        if (
            ANYWHERE in public
            and all(self.default_route_via_nat(s) for s in fn.subnets)
            and self.allows_out(fn, HTTPS, [], [ANYWHERE])
        ):
            return "NAT gateway to the public endpoint"
        return None

    def path_to_runtime(self, fn: Lambda, chart_values: dict) -> str | None:
        """The chart's NLB is internet-facing: out through the NAT to its public address, on every runtime port."""
        balancer = chart_values.get("loadBalancer", {})
        if balancer.get("internal") or balancer.get("sourceRanges"):
            return None  # an internal or source-restricted NLB needs a path this check does not model: fail loudly
        ports = range(int(fn.environment["IPOC_PORT_MIN"]), int(fn.environment["IPOC_PORT_MAX"]) + 1)
        if all(self.default_route_via_nat(s) for s in fn.subnets) and all(
            self.allows_out(fn, p, [], [ANYWHERE]) for p in ports
        ):
            return "NAT gateway to the internet-facing NLB"
        return None


def chart_values(templates: dict[str, dict], defaults: dict) -> dict:
    """The values the CDK app installs the chart with, over values.yaml (tokens become placeholders)."""
    [chart] = [
        r for t in templates.values() for r in t["Resources"].values() if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"
    ]
    raw = chart["Properties"]["Values"]
    text = raw if isinstance(raw, str) else "".join(p if isinstance(p, str) else "TOKEN" for p in raw["Fn::Join"][1])

    def merge(base: dict, over: dict) -> dict:
        return {**base, **{k: merge(base.get(k, {}), v) if isinstance(v, dict) else v for k, v in over.items()}}

    return merge(defaults, json.loads(text))


def _subnet_of(inner: str, outer: str) -> bool:
    """``inner`` lies within ``outer`` (never, across IPv4 and IPv6)."""
    a, b = ipaddress.ip_network(inner), ipaddress.ip_network(outer)
    if isinstance(a, ipaddress.IPv4Network) and isinstance(b, ipaddress.IPv4Network):
        return a.subnet_of(b)
    if isinstance(a, ipaddress.IPv6Network) and isinstance(b, ipaddress.IPv6Network):
        return a.subnet_of(b)
    return False

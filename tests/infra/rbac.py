"""Kubernetes RBAC's authorization rule, over the chart's rendered objects (no cluster here).

The same semantics as the API server's RBAC authorizer (``rbac/v1`` RuleAllows):
a request is allowed when some rule of a Role bound in the request's namespace,
or of a ClusterRole bound anywhere by a ClusterRoleBinding (or in that namespace
by a RoleBinding), names its API group, resource (with subresource) and verb,
with ``*`` matching anything, and, when the rule lists resourceNames, the
object's name (never satisfied by create or collection requests, which carry no name).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.infra.k8s_calls import Call


@dataclass(frozen=True)
class Grant:
    namespace: str  # "" for cluster-wide
    group: str
    resource: str
    verb: str
    names: tuple[str, ...]  # resourceNames ("" tuple: any)


def _bound_to_group(binding: dict, group: str) -> bool:
    return any(s.get("kind") == "Group" and s.get("name") == group for s in binding.get("subjects") or [])


def grants(objects: list[dict], group: str) -> list[Grant]:
    """Every (namespace, group, resource, verb) the chart grants ``group``, wildcards kept as '*'."""
    roles = {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    found = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding") or not _bound_to_group(binding, group):
            continue
        scope = binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], scope if ref["kind"] == "Role" else "", ref["name"]))
        if role is None:
            continue  # a binding to a role the chart does not ship: grants nothing we can see (a test checks)
        for rule in role.get("rules") or []:
            for api_group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        found.append(Grant(scope, api_group, resource, verb, tuple(rule.get("resourceNames") or ())))
    return found


def allows(grant: Grant, call: Call) -> bool:
    return (
        grant.namespace in ("", call.namespace)
        and grant.group in ("*", call.group)
        and (
            grant.resource in ("*", call.resource)
            or (grant.resource.endswith("/*") and call.resource.startswith(grant.resource[:-1]))
        )
        and grant.verb in ("*", call.verb)
        and (not grant.names or (call.name != "" and call.name in grant.names))
    )


def allowed(objects: list[dict], group: str, call: Call) -> bool:
    return any(allows(g, call) for g in grants(objects, group))

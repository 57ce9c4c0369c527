"""Which Kubernetes API calls the VaaS kubernetes backend makes, as RBAC sees them.

Used as a pytest plugin (``-p tests.infra.k8s_calls``) around the backend's own
functional tests: it wraps the kubernetes client's one HTTP entry point and,
for requests issued from ``lambdas/vaas/backends/kubernetes.py`` (not the
tests' own reads and the kubelet stand-in), writes each call's RBAC attributes
to the JSON-lines file named by ``IPOC_K8S_CALLS``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from types import FrameType
from urllib.parse import urlsplit

BACKEND = os.path.join("lambdas", "vaas", "backends", "kubernetes.py")


@dataclass(frozen=True)
class Call:
    verb: str  # RBAC verb: get, list, watch, create, update, patch, delete, deletecollection
    group: str  # API group ("" for the core group)
    resource: str  # with its subresource: "pods/status"
    namespace: str
    name: str  # "" for create and collection requests


def call_from_request(method: str, url: str, query: dict | None = None) -> Call:
    """Kubernetes's request-info rules: /api/v1/... is the core group, /apis/<group>/<version>/... the rest."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts[0] == "api":
        group, rest = "", parts[2:]
    elif parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        raise ValueError(f"not a resource request: {url}")
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), (rest[2] if len(rest) > 2 else "")
    watching = bool(query and str(query.get("watch", "")).lower() in ("true", "1"))
    verb = {
        "GET": "get" if name else ("watch" if watching else "list"),
        "HEAD": "get" if name else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }[method.upper()]
    return Call(verb, group, f"{resource}/{sub}" if sub else resource, namespace, name)


def _from_backend() -> bool:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.endswith(BACKEND):
            return True
        frame = frame.f_back
    return False


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest's hook signature
    path = os.environ.get("IPOC_K8S_CALLS")
    if not path:
        return
    from kubernetes.client import rest

    original = rest.RESTClientObject.request

    def recording(self, method, url, query_params=None, *args, **kwargs):  # noqa: ANN001, ANN202
        if _from_backend():
            call = call_from_request(method, url, dict(query_params or []))
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(call)) + "\n")
        return original(self, method, url, query_params, *args, **kwargs)

    rest.RESTClientObject.request = recording

"""Our proxy attestation service's container image, built from docker/proxy/Dockerfile at deploy time.

``cdk synth`` only stages the build context into cdk.out (no docker engine is
needed); ``cdk deploy`` builds the image and pushes it to the bootstrap ECR
repository. The context is the repository root cut down to what the
Dockerfile copies, so staging stays small and the image's hash moves only
when the proxy's code or pins change.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from infra.bundling import project_pins

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "docker/proxy/Dockerfile"
# Everything is excluded but what the Dockerfile copies (.dockerignore syntax: later "!" lines re-include).
CONTEXT = ("pyproject.toml", "README.md", "docker/proxy", "ipoc", "runtime", "client")
# The only distributions the proxy imports (jsonschema: the CLI imports every command group, and
# `ipoc function register` validates with it at import); their pins come from pyproject.toml.
PROXY_PACKAGES = ("cbor2", "click", "cryptography", "jsonschema", "protobuf", "pybase64", "rich")
EXCLUDE = ["*", *(f"!{path}" for path in CONTEXT), "**/__pycache__", "**/*.pyc"]


class ProxyImage(Construct):
    """The image asset; ``image_uri`` is what the chart's proxy Deployment runs."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(ROOT),
            file=DOCKERFILE,
            build_args={"PROXY_REQUIREMENTS": " ".join(project_pins(PROXY_PACKAGES, who="the proxy image"))},
            exclude=EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,  # the Nitro node group's architecture
        )
        self.image_uri = self.asset.image_uri

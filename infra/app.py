"""The CDK app: ``npx cdk synth`` / ``cdk deploy`` run this (see ``cdk.json``). It only creates stacks."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra import bundling
from infra.config import from_context
from infra.nag import suppress
from infra.stacks.network import NetworkStack
from infra.stacks.observability import ObservabilityStack
from infra.stacks.platform import PlatformStack


def build(app: cdk.App) -> list[cdk.Stack]:
    """Create the stacks on ``app`` (tests call this on their own App)."""
    config = from_context(app.node.try_get_context)
    # Environment-agnostic unless the CLI knows the account: synth needs no AWS lookups.
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    prefix = config.stack_prefix
    network = NetworkStack(
        app, f"{prefix}Network", config=config, env=env, description="i-PoC network: VPC and endpoints"
    )
    platform = PlatformStack(
        app,
        prefix,
        config=config,
        network=network,
        env=env,
        code_dir=bundling.code_directory(),
        dependencies_dir=bundling.dependencies_directory(),
        description="i-PoC platform: EKS with Nitro Enclaves, API, Lambdas, DynamoDB, S3, Step Functions",
    )
    observability = ObservabilityStack(
        app,
        f"{prefix}Observability",
        config=config,
        platform=platform,
        env=env,
        description="i-PoC dashboard and alarms",
    )
    stacks: list[cdk.Stack] = [network, platform, observability]
    for stack, kind in zip(stacks, ("network", "platform", "observability"), strict=True):
        cdk.Tags.of(stack).add("project", "ipoc")
        suppress(stack, kind)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stacks


def main() -> None:
    app = cdk.App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()

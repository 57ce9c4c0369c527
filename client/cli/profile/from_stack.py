"""``ipoc profile from-stack``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command("from-stack", short_help="Write an AWS profile from a deployed stack's outputs")
@click.argument("stack", default="Ipoc")
@click.option("--name", default="aws", show_default=True, help="The profile to write (replaced if it exists).")
@click.option(
    "--region", default=None, help="The stack's region (default: your AWS configuration's). [env: AWS_REGION]"
)
@click.pass_obj
def from_stack(app: Application, stack: str, name: str, region: str | None) -> None:
    """Read STACK's outputs (default: Ipoc, the platform stack `cdk deploy` creates) and write an
    `aws` profile: the API URL for CCFaaS, VaaS and the S3 streamer, the region requests are signed
    for, and the inputs bucket. Use it with `--profile aws` or IPOC_PROFILE=aws."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from client import profiles

    try:
        described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        app.abort(f"cannot read stack {stack!r}: {exc.response['Error'].get('Message', exc)}")
    except BotoCoreError as exc:
        app.abort(f"cannot reach CloudFormation: {exc} (set AWS_REGION and credentials)")
    if not described["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in described["StackStatus"]:
        app.abort(f"stack {stack} is {described['StackStatus']}: wait for `cdk deploy` to finish")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    try:
        written = profiles.from_stack_outputs(name, outputs)
        path = profiles.save(written)
    except profiles.ProfileError as exc:
        app.abort(str(exc))
    app.terminal.display_success(f"Wrote profile {name!r} to {path}: {written.endpoints['ccfaas']} ({written.region})")
    if written.inputs_bucket:
        app.terminal.display(f"Inputs bucket: {written.inputs_bucket}")

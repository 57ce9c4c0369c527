"""``ipoc camera upload``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from client.cli.params import s3_url

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Upload an encrypted video to S3")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("target", metavar="s3://BUCKET/KEY")
@click.option("--local", "use_local", is_flag=True, help="Upload to the running local stack's S3.")
@click.option("--endpoint-url", default=None, help="An S3 endpoint other than AWS's. [env: AWS_ENDPOINT_URL]")
@click.pass_obj
def upload(app: Application, file: Path, target: str, use_local: bool, endpoint_url: str | None) -> None:
    """Upload FILE to s3://BUCKET/KEY with a progress bar (multipart for large files)."""
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    bucket, key = s3_url(target, param_hint="TARGET")
    kwargs: dict[str, Any] = {}
    if use_local:
        from client.api import STACK_DOWN
        from client.profiles import ProfileError, load

        try:
            profile = load("local")  # `ipoc local up` writes it, with its S3 endpoint
        except ProfileError:
            app.abort(STACK_DOWN)  # never started here
        if not profile.s3_endpoint:
            app.abort(STACK_DOWN)
        kwargs = {
            "endpoint_url": profile.s3_endpoint,
            "region_name": profile.region,
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
    elif endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    s3 = boto3.client("s3", **kwargs)
    size = file.stat().st_size
    try:
        with app.terminal.progress(f"upload {file.name}", size) as advance:
            s3.upload_file(str(file), bucket, key, Callback=advance)
    except EndpointConnectionError as exc:
        if use_local:
            from client.api import STACK_DOWN

            app.abort(STACK_DOWN)  # the profile's stack has stopped
        app.abort(f"upload to {target} failed: {exc}")
    except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
        app.abort(f"upload to {target} failed: {exc}")
    app.terminal.display_success(f"Uploaded {file} ({size} bytes) to {target}")

"""``ipoc stream``, ``ipoc exec`` and ``ipoc results``: the user's steps one at a time."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from client.api import Api, ApiError
from client.cli.params import s3_url
from client.cli.policy.loading import load_credentials
from client.s3 import object_size
from client.user import fetch_results
from ipoc.client import VeracruzClient
from ipoc.errors import IpocError

if TYPE_CHECKING:
    from client.cli.application import Application

_policy = click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_identity = click.option(
    "--identity",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate of a policy identity.",
)
_key = click.option(
    "--key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key of that certificate.",
)


def streaming(app: Application, api: Api, bucket: str, key: str) -> AbstractContextManager[None]:
    """A spinner with the elapsed time and the object's size while the S3 streamer copies
    (it answers only when the copy ends, so there is no byte count to show before)."""
    size = object_size(api.profile, bucket, key) if app.terminal.shows_progress else None
    return app.terminal.status(f"streaming s3://{bucket}/{key}", size=size)


@click.command(short_help="Have the S3 streamer copy an S3 object into an instance")
@_policy
@click.option("--input", "source", required=True, help="s3://BUCKET/KEY of the (encrypted) input.")
@click.option("--to", "target", required=True, help="Enclave path to write, e.g. /s3_app_input/in_enc.y4m.")
@_identity
@_key
@click.pass_obj
def stream(app: Application, policy_file: Path, source: str, target: str, identity: Path, key: Path) -> None:
    """Ask the S3 streamer to copy SOURCE into the instance POLICY_FILE describes, as the given identity."""
    bucket, object_key = s3_url(source)
    try:
        policy, certificate, private_key = load_credentials(policy_file, identity, key)
    except IpocError as exc:
        app.abort(exc.message)
    body = {
        "s3": {"bucket": bucket, "filename": object_key},
        "veracruz": {"filename": target, "policy": policy, "certificate": certificate, "key": private_key},
    }
    api = app.api()
    try:
        with streaming(app, api, bucket, object_key):
            reply = api.call("s3stream", "POST", "/s3_stream_veracruz", body=body)
    except ApiError as exc:
        app.abort(exc.message)
    app.terminal.display_success(f"Streamed {reply['bytes']} bytes from {source} into {target}")


@click.command("exec", short_help="Execute a program in an instance")
@_policy
@click.argument("program")
@_identity
@_key
@click.pass_obj
def exec_(app: Application, policy_file: Path, program: str, identity: Path, key: Path) -> None:
    """Execute PROGRAM (an enclave path) in the instance POLICY_FILE describes; exit 1 if it fails."""
    try:
        with VeracruzClient(*load_credentials(policy_file, identity, key)) as client:
            with app.terminal.status(f"running {program}"):
                code = client.execute(program)
    except IpocError as exc:
        app.abort(exc.message)
    app.terminal.display(f"{program} exited with code {code}")
    if code != 0:
        raise SystemExit(1)


@click.command(short_help="Fetch an instance's results into a folder")
@_policy
@_identity
@_key
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write into.")
@click.option("--result", "extra", multiple=True, metavar="ENCLAVE_PATH", help="Another file to fetch. Repeatable.")
@click.pass_obj
def results(app: Application, policy_file: Path, identity: Path, key: Path, out: Path, extra: tuple[str, ...]) -> None:
    """Fetch stdout, stderr and any --result files; and /output/detections.json with the frames it names,
    when the program wrote one (the VOD detector does)."""
    try:
        with VeracruzClient(*load_credentials(policy_file, identity, key)) as client:
            fetched = fetch_results(client, out, list(extra))
    except IpocError as exc:
        app.abort(exc.message)
    app.terminal.display_success(f"Fetched {len(fetched)} files into {out}")

"""``ipoc camera``: prepare a camera's video for the VOD function."""

import click

from client.cli.camera.encrypt import encrypt
from client.cli.camera.upload import upload


@click.group(short_help="Encrypt and upload camera videos")
def camera() -> None:
    """The camera side of the i-PoC: videos are converted to YUV4MPEG2, encrypted with
    AES-128-CTR, and uploaded to S3, from where the S3 streamer copies them into an enclave."""


camera.add_command(encrypt)
camera.add_command(upload)

"""``ipoc camera encrypt``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ipoc.certs import write_private

if TYPE_CHECKING:
    from client.cli.application import Application


@click.command(short_help="Convert a video to YUV4MPEG2 and encrypt it")
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The encrypted .y4m to write."
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="16-byte key file; created with a random key when missing. [default: OUT.key]",
)
@click.option(
    "--iv",
    "iv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="16-byte IV file; created at random when missing. [default: OUT.iv]",
)
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Encrypt at most this many frames.")
@click.pass_obj
def encrypt(
    app: Application, video: Path, out: Path, key_file: Path | None, iv_file: Path | None, max_frames: int | None
) -> None:
    """Decode VIDEO (anything PyAV reads, e.g. an mp4), convert it to 4:2:0 YUV4MPEG2 and encrypt it
    with AES-128-CTR (the IV is the initial counter block), as the VOD detector expects.

    Key and IV files are reused when they exist and created (private, random) when not.
    """
    from client.camera.keys import key_material, new_key_material
    from client.camera.video import decode_frames, encrypt_frames, frame_count

    key_file = key_file or out.with_name(out.name + ".key")
    iv_file = iv_file or out.with_name(out.name + ".iv")
    if key_file.resolve() == iv_file.resolve():
        app.abort(f"--key and --iv name the same file ({key_file}): the key and the IV are two files of 16 bytes")
    fresh_key, fresh_iv = new_key_material()
    material = {}
    for path, fresh, what in ((key_file, fresh_key, "key"), (iv_file, fresh_iv, "IV")):
        try:
            material[what] = key_material(path, what) if path.exists() else fresh
        except ValueError as exc:
            app.abort(str(exc))
    try:
        width, height, frames = decode_frames(video, max_frames=max_frames)
        declared = frame_count(video)
    except Exception as exc:  # PyAV's errors have no common base worth naming here
        app.abort(f"cannot decode {video}: {getattr(exc, 'strerror', None) or exc}")  # FFmpeg's text, not its errno
    # written once the video decodes: a failed run leaves no new key files behind
    for path, what in ((key_file, "key"), (iv_file, "IV")):
        if not path.exists():
            write_private(path, material[what])
            app.terminal.display_info(f"New random {what} written to {path}")
    key, iv = material["key"], material["IV"]
    total = min(filter(None, (declared, max_frames)), default=None)
    with app.terminal.progress(f"encrypt {video.name}", total, unit="frames") as advance, open(out, "wb") as handle:
        count = encrypt_frames(width, height, frames, handle, key, iv, progress=advance)
    app.terminal.display_success(
        f"Encrypted {count} frames of {width}x{height} into {out} ({out.stat().st_size} bytes)"
    )

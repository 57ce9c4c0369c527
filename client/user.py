"""What the user-side commands share: the user's identity, user policies, and fetching results."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from ipoc import rights
from ipoc.certs import Identity, new_identity
from ipoc.client import VeracruzClient
from ipoc.errors import AccessDenied, FileNotFound, NoResult, RequestRefused
from ipoc.paths import ipoc_home


def user_identity() -> tuple[Identity, Path, Path, bool]:
    """The user's long-lived key and certificate under $IPOC_HOME/identity; created on first use."""
    directory = ipoc_home() / "identity"
    cert, key = directory / "user.crt", directory / "user.key"
    created = False
    if not (cert.exists() and key.exists()):
        new_identity("ipoc-user").write(cert, key)
        created = True
    return Identity(cert.read_text(), key.read_text()), cert, key, created


def directory_of(path: str) -> str:
    return posixpath.dirname(path.rstrip("/")) + "/"


def run_user_policy(
    function: str,
    instance_id: str,
    user: Identity,
    streamer: Identity,
    *,
    program: str,
    input_path: str,
    key_path: str,
    iv_path: str,
    output_dir: str = "/output/",
) -> dict[str, Any]:
    """The seed's two identities: the streamer may write the input's directory; the user writes key
    and IV, reads outputs and the program's streams, and may execute the program."""
    user_dirs = sorted({directory_of(key_path), directory_of(iv_path)})
    return {
        "function": function,
        "instanceid": instance_id,
        "identities": [
            {
                "certificate": streamer.certificate,
                "file_rights": [{"file_name": directory_of(input_path), "rights": int(rights.WRITE)}],
            },
            {
                "certificate": user.certificate,
                "file_rights": [
                    *({"file_name": d, "rights": int(rights.WRITE)} for d in user_dirs),
                    {"file_name": output_dir, "rights": int(rights.READ)},
                    {"file_name": "stdout", "rights": int(rights.READ)},
                    {"file_name": "stderr", "rights": int(rights.READ)},
                    {"file_name": directory_of(program), "rights": int(rights.OPEN_EXECUTE)},
                ],
            },
        ],
    }


DETECTIONS = "/output/detections.json"  # the VOD detector's report: fetched when the program wrote one


def fetch_results(client: VeracruzClient, out: Path, extra: list[str]) -> list[str]:
    """The ``extra`` paths into ``out`` (one missing or unreadable is an error, raised once every other path is
    fetched; one empty is saved empty); and stdout, stderr and the VOD detector's detections.json with the
    annotated frames it names, when there and readable (any other program writes no detections.json)."""
    out.mkdir(parents=True, exist_ok=True)
    fetched, missing = [], []
    for path in dict.fromkeys(["stdout", "stderr", DETECTIONS, *extra]):
        try:
            data = client.read_file(path)
        except NoResult:  # an empty stream or file (Veracruz answers "no result")
            if path not in extra:
                continue  # nothing to save
            data = b""  # asked for: saved, empty
        except (FileNotFound, AccessDenied) as exc:
            client.connect()  # the refused read ended the session: a new one for the paths still to read
            if path in extra:
                missing.append(exc.message)  # said once every other path is fetched, not instead of them
            continue  # stdout, stderr and detections.json are fetched when there and readable: none is asked for
        target = out / (f"{path}.txt" if path in ("stdout", "stderr") else posixpath.basename(path))
        target.write_bytes(data)
        fetched.append(str(target))
        if path == DETECTIONS and data:  # (an empty one, asked for, names no frames)
            for frame in json.loads(data).get("frames", []):
                if frame.get("boxes"):
                    image = f"/output/prediction.{frame['index']}.png"
                    (out / posixpath.basename(image)).write_bytes(client.read_file(image))
                    fetched.append(str(out / posixpath.basename(image)))
    if missing:
        raise RequestRefused(f"{'; '.join(missing)} (the rest was fetched into {out})")
    return fetched

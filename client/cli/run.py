"""``ipoc run``: the seed's whole user timeline in one command."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from client.api import Api, ApiError
from client.camera.keys import key_material
from client.cli.instance import ENDED
from client.cli.params import s3_url
from client.cli.steps import streaming
from client.user import fetch_results, run_user_policy, user_identity
from ipoc.certs import new_identity
from ipoc.client import VeracruzClient
from ipoc.errors import IpocError

if TYPE_CHECKING:
    from client.cli.application import Application


class StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step, self.message = step, message


class Timeline:
    """Named steps with timing; a failure names its step."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.timings: list[tuple[str, float]] = []

    def step(self, name: str) -> _Step:
        return _Step(self, name)


class _Step:
    def __init__(self, timeline: Timeline, name: str) -> None:
        self.timeline, self.name = timeline, name

    def __enter__(self) -> _Step:
        self.started = time.monotonic()
        self.timeline.app.terminal.display_info(f"» {self.name}")
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> Literal[False]:
        elapsed = time.monotonic() - self.started
        self.timeline.timings.append((self.name, elapsed))
        if exc is None:
            self.timeline.app.terminal.display_success(f"  done in {elapsed:.2f} s")
            return False
        if isinstance(exc, (ApiError, IpocError)):
            raise StepFailed(self.name, exc.message) from None
        return False


@click.command(short_help="Run a function on an S3 input, end to end")
@click.argument("function", metavar="FUNCTION[:VERSION|:ALIAS]")
@click.option("--input", "source", required=True, help="s3://BUCKET/KEY of the encrypted input.")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The input's 16-byte decryption key file.",
)
@click.option(
    "--iv",
    "iv_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The input's 16-byte IV file.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the results.")
@click.option("--result", "extra", multiple=True, metavar="ENCLAVE_PATH", help="Another file to fetch. Repeatable.")
@click.option("--keep", is_flag=True, help="Keep the instance (and its policy) instead of deleting it at the end.")
@click.option("--instance-id", default=None, help="Name for the instance. [default: FUNCTION-<random>]")
@click.option("--input-path", default="/s3_app_input/in_enc.y4m", show_default=True, help="Enclave path of the input.")
@click.option("--key-path", default="/user_input/key", show_default=True, help="Enclave path of the key.")
@click.option("--iv-path", default="/user_input/iv", show_default=True, help="Enclave path of the IV.")
@click.pass_obj
def run(
    app: Application,
    function: str,
    source: str,
    key_file: Path,
    iv_file: Path,
    out: Path,
    extra: tuple[str, ...],
    keep: bool,
    instance_id: str | None,
    input_path: str,
    key_path: str,
    iv_path: str,
) -> None:
    """Run FUNCTION on an encrypted S3 object and fetch the results into OUT.

    FUNCTION is a name (its latest version), NAME:VERSION or NAME:ALIAS; the
    instance runs exactly the version it names when it is created.

    Creates (or reuses) your identity and a fresh temporary streamer identity,
    creates the instance and waits until it is READY, verifies the attestation
    chain, the runtime hash and the policy hash, writes the key and IV, has the
    S3 streamer copy the input into the enclave, executes the program, fetches
    stdout, stderr, detections.json and the annotated frames, and deletes the
    instance (unless --keep). Any failure names its step, deletes the instance
    and exits 1.
    """
    bucket, object_key = s3_url(source)
    material = {}
    for name, path, what in (("--key", key_file, "key"), ("--iv", iv_file, "IV")):
        try:
            material[name] = key_material(path, what)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=name) from None
    api = app.api()
    timeline = Timeline(app)
    instance_id = instance_id or f"{function.replace(':', '-')}-{uuid.uuid4().hex[:8]}"  # FUNCTION may be NAME:ALIAS
    created = False
    try:
        with timeline.step(f"Look up function {function}"):
            policy_doc = api.call("ccfaas", "GET", f"/function/{function}")
            program = policy_doc["programs"][0]["program_file_name"]
        with timeline.step("Prepare identities"):
            user, user_cert, _, made = user_identity()
            streamer = new_identity(f"ipoc-streamer-{instance_id}")  # temporary: lives only in this process
            app.terminal.display_info(f"  user identity {'created' if made else 'reused'}: {user_cert}")
        with timeline.step(f"Create instance {instance_id} and wait until READY"):
            user_policy = run_user_policy(
                function,
                instance_id,
                user,
                streamer,
                program=program,
                input_path=input_path,
                key_path=key_path,
                iv_path=iv_path,
            )
            api.call("ccfaas", "POST", "/instance", body=user_policy, params={"wait": "25"})
            created = True
            with app.terminal.status(f"waiting for {instance_id}"):
                record = _wait_ready(api, instance_id)
            policy = record["policy"]
            out.mkdir(parents=True, exist_ok=True)
            (out / "policy.json").write_text(policy)
        with timeline.step("Verify the instance (attestation chain, runtime hash, policy hash)"):
            client = VeracruzClient(policy, user.certificate, user.private_key)
            client.connect()
            app.terminal.display_info(f"  runtime hash {client.verified['runtime_hash']} (as the policy pins)")
            app.terminal.display_info(
                f"  policy hash  {client.verified['policy_hash']} (the sha256 of {out / 'policy.json'})"
            )
        try:
            with timeline.step("Write the key and IV"):
                client.write_file(key_path, material["--key"])
                client.write_file(iv_path, material["--iv"])
            with timeline.step(f"Stream {source} into {input_path}"):
                body = {
                    "s3": {"bucket": bucket, "filename": object_key},
                    "veracruz": {
                        "filename": input_path,
                        "policy": policy,
                        "certificate": streamer.certificate,
                        "key": streamer.private_key,
                    },
                }
                with streaming(app, api, bucket, object_key):
                    copied = api.call("s3stream", "POST", "/s3_stream_veracruz", body=body)
                app.terminal.display_info(f"  {copied['bytes']} bytes")
            with timeline.step(f"Execute {program}"):
                with app.terminal.status(f"running {program}"):
                    code = client.execute(program)
                if code != 0:
                    try:
                        detail = client.read_file("stderr").decode(errors="replace").strip().splitlines()[-1]
                    except IpocError:
                        detail = "no stderr"
                    raise StepFailed(f"Execute {program}", f"the program exited with code {code}: {detail}")
            with timeline.step(f"Fetch the results into {out}"):
                fetched = fetch_results(client, out, list(extra))
                app.terminal.display_info(f"  {len(fetched)} files")
        finally:
            client.close()
        _summary(app, out, fetched)
    except KeyboardInterrupt:
        if created and not keep:
            _delete(api, instance_id)
        app.abort("interrupted" + (f"; instance {instance_id} deleted" if created and not keep else ""), code=130)
    except StepFailed as exc:
        if created and not keep:
            _delete(api, instance_id)
        app.abort(
            f"{exc.step} failed: {exc.message}" + ("" if keep or not created else f" (instance {instance_id} deleted)")
        )
    if keep:
        app.terminal.display_info(f"Instance {instance_id} kept; `ipoc instance delete {instance_id}` releases it")
    else:
        with timeline.step(f"Delete instance {instance_id}"):
            _delete(api, instance_id)
    app.terminal.display_table("Timeline", ["Step", "Seconds"], [[n, f"{s:.2f}"] for n, s in timeline.timings])


def _wait_ready(api: Api, instance_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = api.call("ccfaas", "GET", f"/instance/{instance_id}")
        if record["status"] == "READY":
            return record
        if record["status"] in ENDED:  # it will not become READY
            raise ApiError(200, record["status"], f"the instance ended {record['status']}: {record.get('reason')}")
        if time.monotonic() > deadline:
            raise ApiError(200, "Timeout", f"the instance was still {record['status']} after {timeout:g} s")
        time.sleep(0.5)


def _delete(api: Api, instance_id: str) -> None:
    try:
        api.call("ccfaas", "DELETE", f"/instance/{instance_id}")
    except ApiError:
        pass  # the reaper or the TTL finishes what a failed delete leaves


def _summary(app: Application, out: Path, fetched: list[str]) -> None:
    detections = out / "detections.json"
    if str(detections) not in fetched:  # this run's program wrote none (OUT may hold an earlier run's)
        return
    frames = json.loads(detections.read_text())["frames"]
    hits = [f for f in frames if f["boxes"]]
    app.terminal.display(
        f"{len(frames)} frames analysed, objects found in {len(hits)}"
        + (f"; frame {hits[0]['index']}: {hits[0]['boxes']}" if hits else "")
    )
    if hits:
        app.terminal.display(f"Annotated frames: {out}/prediction.<n>.png")

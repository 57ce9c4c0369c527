"""`make demo`: the i-PoC timeline end to end on this machine, through the real services.

Starts the local stack (moto, proxy attestation, CCFaaS, VaaS, the S3 streamer,
the lifecycle workflow) in its own IPOC_HOME on free ports, then plays the
seed's timeline with the echo function: the publisher registers it, the user
creates an instance, the S3 streamer copies the user's input from S3 into the
enclave, the user executes and reads the results with `ipoc veracruz`, and
deletes the instance. It ends with the workflow's states and a timing table.
"""

from __future__ import annotations

import base64
import hashlib
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

from ipoc.certs import new_identity  # noqa: E402
from ipoc.rights import OPEN_EXECUTE, READ, READ_WRITE, WRITE  # noqa: E402

IPOC = [sys.executable, "-m", "client"]
ECHO_WASM = ROOT / "build" / "functions" / "echo" / "echo.wasm"
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
    print("$ ipoc " + " ".join(shlex.quote(a) for a in args), flush=True)
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
    print(f"Demo workspace: {work}")
    ccfaas_port, vaas_port, s3_port, proxy_port, aws_port, runtime_port = free_ports(6)
    ccfaas, s3stream, aws = (f"http://127.0.0.1:{p}" for p in (ccfaas_port, s3_port, aws_port))
    alice = {"X-Ipoc-Local-User": "alice"}
    local_aws = dict(endpoint_url=aws, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    try:
        with step("Start the local stack"):
            ipoc("local", "up", "--detach", "--ccfaas-port", str(ccfaas_port), "--vaas-port", str(vaas_port),
                 "--s3stream-port", str(s3_port), "--proxy-port", str(proxy_port), "--aws-port", str(aws_port),
                 "--runtime-ports", f"{runtime_port}-{runtime_port}")

        with step("Publisher registers the echo function and uploads its program"):
            wasm = ECHO_WASM.read_bytes()
            function = {
                "function": "echo", "execution_strategy": "JIT", "max_memory_mib": 64, "debug": False, "enable_clock": False,
                "programs": [{
                    "file_rights": [
                        {"file_name": "/input/", "rights": int(READ)}, {"file_name": "/output/", "rights": int(READ_WRITE)},
                        {"file_name": "stdout", "rights": int(WRITE)}, {"file_name": "stderr", "rights": int(WRITE)},
                    ],
                    "id": 0, "pi_hash": hashlib.sha256(wasm).hexdigest(), "program_file_name": "/program/echo.wasm",
                }],
                "file_rights": [{"file_name": "/program/", "rights": int(WRITE)}],
            }
            expect(requests.post(f"{ccfaas}/function", json=function, timeout=30), 201, "POST /function")
            segment = base64.b64encode(b"/program/echo.wasm").decode()
            wrong = requests.post(f"{ccfaas}/function/echo/program/{segment}", data=b"not the program", timeout=30)
            print(f"a tampered upload is refused: HTTP {wrong.status_code} {wrong.json()['error']}")
            expect(requests.post(f"{ccfaas}/function/echo/program/{segment}", data=wasm, timeout=30), 201,
                   "POST /function/echo/program/<base64 of /program/echo.wasm>")

        with step("User creates identities and an instance; the workflow makes it READY"):
            user, streamer = new_identity("demo-user"), new_identity("demo-streamer")
            user.write(work / "user.crt", work / "user.key")
            user_policy = {"function": "echo", "instanceid": "demo", "identities": [
                {"certificate": streamer.certificate, "file_rights": [{"file_name": "/input/", "rights": int(WRITE)}]},
                {"certificate": user.certificate, "file_rights": [
                    {"file_name": "/input/", "rights": int(WRITE)}, {"file_name": "/output/", "rights": int(READ)},
                    {"file_name": "stdout", "rights": int(READ)}, {"file_name": "stderr", "rights": int(READ)},
                    {"file_name": "/program/", "rights": int(OPEN_EXECUTE)},
                ]},
            ]}
            ready = expect(requests.post(f"{ccfaas}/instance?wait=25", json=user_policy, headers=alice, timeout=60),
                           200, "POST /instance?wait=25 (READY)")
            (work / "policy.json").write_text(ready["policy"])
            ipoc("policy", "hash", str(work / "policy.json"))

        with step("The S3 streamer copies the user's input from S3 into the enclave"):
            boto3.client("s3", **local_aws).put_object(
                Bucket="ipoc-local-inputs", Key="demo/input.txt", Body=b"confidential computing on one machine\n")
            body = {"s3": {"bucket": "ipoc-local-inputs", "filename": "demo/input.txt"},
                    "veracruz": {"filename": "/input/data.txt", "policy": ready["policy"],
                                 "certificate": streamer.certificate, "key": streamer.private_key}}
            copied = expect(requests.post(f"{s3stream}/s3_stream_veracruz", json=body, timeout=60), 200, "POST /s3_stream_veracruz")
            print(f"{copied['bytes']} bytes streamed into /input/data.txt")

        with step("User verifies the instance, executes and reads the results"):
            ipoc("veracruz", str(work / "policy.json"), "--identity", str(work / "user.crt"), "--key", str(work / "user.key"),
                 "--compute", "/program/echo.wasm", "--result", "stdout=-",
                 "--result", f"/output/result.txt={work / 'result.txt'}", "--no-shutdown")
            print("result.txt:\n" + (work / "result.txt").read_text())

        with step("User deletes the instance; the workflow tears it down"):
            deleted = expect(requests.delete(f"{ccfaas}/instance/demo", headers=alice, timeout=60), 200, "DELETE /instance/demo")
            print(f"instance status: {deleted['status']}")
            sfn = boto3.client("stepfunctions", **local_aws)
            arn = deleted["execution_arn"]
            deadline = time.monotonic() + 30
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.1)
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
            print(f"workflow {sfn.describe_execution(executionArn=arn)['status']}: {' -> '.join(states)}")
    finally:
        subprocess.run(IPOC + ["local", "down"])

    print("\n== Timings")
    width = max(len(t) for t, _ in timings)
    for title, seconds in timings:
        print(f"{title:<{width}}  {seconds:6.2f} s")
    print(f"{'total':<{width}}  {sum(s for _, s in timings):6.2f} s")
    print(f"\nEverything the demo wrote is in {work}")


if __name__ == "__main__":
    main()

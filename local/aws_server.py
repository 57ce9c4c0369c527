"""The local AWS: moto's server in a process of its own, with the stack's durable state.

``ipoc local up`` starts it (``python -m local.aws_server``) so that moto's
request handling does not share a GIL with the API adapters. It restores the
kept state (``local.persistence``), creates the tables, buckets and lifecycle
workflow the AWS deployment creates, then prints one JSON line on stdout
(``{"ready": true, ...}``) and serves until SIGTERM. It dies with the stack
process (``PR_SET_PDEATHSIG``): a stack killed with ``kill -9`` leaves no moto
holding its port. The workflow's task Lambdas run here, in process
(``local.lambda_runner``), with the environment the stack gave this process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

REGION = "us-east-1"
log = logging.getLogger(__name__)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent (the stack) dies, however it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        log.warning("cannot ask to die with the stack process (no prctl): stop this process with the stack")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def create_resources(tables: dict[str, str], buckets: list[str]) -> str:
    """The tables, buckets and workflow the AWS deployment creates (those the restore did not bring back).

    Made through moto's backends in this process, not its HTTP API: no boto3 clients to build and
    no per-service web app to set up before the stack is ready (the quickest part of ``up``).
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    from lambdas.shared.tables import ALL_TABLES
    from local.workflow import register

    dynamodb = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    for spec in ALL_TABLES:
        kwargs = spec.create_table_kwargs(tables[spec.logical_name])
        dynamodb.create_table(
            kwargs["TableName"], schema=kwargs["KeySchema"], throughput=None, attr=kwargs["AttributeDefinitions"],
            global_indexes=kwargs.get("GlobalSecondaryIndexes"), indexes=None, streams=None,
            billing_mode=kwargs["BillingMode"], sse_specification=None, tags=[], deletion_protection_enabled=False,
            warm_throughput=None,
        )
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for bucket in buckets:
        if bucket not in s3.buckets:
            s3.create_bucket(bucket, REGION)
    return register(_Iam(), _Lambda(), _StepFunctions(), warm=True)  # the executions run in this process


class _Iam:
    """The calls ``local.workflow.register`` makes, answered by moto's backends as its HTTP API would."""

    def create_role(self, RoleName: str, AssumeRolePolicyDocument: str) -> dict[str, Any]:  # noqa: N803
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iam.models import iam_backends

        role = iam_backends[DEFAULT_ACCOUNT_ID]["global"].create_role(
            RoleName, AssumeRolePolicyDocument, "/", None, "", [], None)
        return {"Role": {"Arn": role.arn}}


class _Lambda:
    def create_function(self, **spec: Any) -> dict[str, Any]:
        import base64

        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        spec["Code"] = {"ZipFile": base64.b64encode(spec["Code"]["ZipFile"]).decode()}
        function = lambda_backends[DEFAULT_ACCOUNT_ID][REGION].create_function(spec)
        return {"FunctionArn": function.function_arn}


class _StepFunctions:
    def create_state_machine(self, name: str, roleArn: str, definition: str) -> dict[str, Any]:  # noqa: N803
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.stepfunctions.responses import get_backend

        # the backend moto's API uses: with execute_state_machine on, the one with the interpreter
        machine = get_backend(DEFAULT_ACCOUNT_ID, REGION).create_state_machine(name, definition, roleArn)
        return {"stateMachineArn": machine.arn}


def reap(interval: float, stop: threading.Event) -> None:
    """The reaper's schedule (EventBridge in AWS). It runs here, where the workflow's tasks start the
    runtimes: a runtime this process started tells a clean shutdown (released) from a death (FAILED)."""
    from lambdas.ccfaas.lifecycle import Lifecycle
    from lambdas.ccfaas.reaper import Reaper

    while not stop.wait(interval):
        try:
            Reaper(Lifecycle.from_settings()).run()
        except Exception:  # the next round tries again
            log.exception("reaper round failed")


def serve(host: str, port: int, state_dir: Path | None, fresh: bool, tables: dict[str, str], buckets: list[str],
          reaper_interval: float | None = None) -> None:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    from local import lambda_runner, moto_patches, runtimes

    started = time.perf_counter()
    moto_patches.apply_all()  # atomic conditional writes and safe concurrent PUTs, as in AWS
    moto_patches.cache_module_list()
    lambda_runner.install()
    runtimes.register()  # the workflow's Allocate and teardown tasks run here, with IPOC_VAAS_BACKEND=local
    default_user_config["stepfunctions"]["execute_state_machine"] = True  # the lifecycle workflow runs for real
    state = None
    if state_dir is not None:
        from local.persistence import DurableState

        state = DurableState.open(state_dir, REGION, fresh=fresh)
        state.attach_dynamodb()
        state.attach_s3()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "local",
                       "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION})
    restored: dict[str, Any] = {}
    if state is not None:
        restored["objects"] = state.restore_buckets()
    arn = create_resources(tables, buckets)
    if state is not None:
        restored["items"] = state.restore_items()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    announce({"ready": True, "pid": os.getpid(), "state_machine": arn, "restored": restored,
              "seconds": round(time.perf_counter() - started, 3)})
    if reaper_interval:
        threading.Thread(target=reap, args=(reaper_interval, stop), daemon=True, name="reaper").start()
    # The warm pool lives here, beside the workflow's Allocate task that takes from it (IPOC_WARM_POOL; 0: none).
    pool = runtimes.start_pool()
    stop.wait()
    if pool is not None:
        runtimes.stop_pool(pool.state_dir)
    server.stop()


_ready_fd: int | None = None


def announce(message: dict[str, Any]) -> None:
    """The one line the stack reads (on the stdout it gave us), then that pipe is closed: nothing else may
    write to it, or a full pipe nobody reads would block this process (Lambda tasks log to stdout)."""
    global _ready_fd
    if _ready_fd is None:
        print(json.dumps(message), flush=True)
        return
    with os.fdopen(_ready_fd, "w") as ready:
        ready.write(json.dumps(message) + "\n")
    _ready_fd = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.aws_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, help="keep state here (default: in memory only)")
    parser.add_argument("--fresh", action="store_true", help="delete the kept state first")
    parser.add_argument("--parent", type=int, help="die when this process (the stack) dies")
    parser.add_argument("--tables", default="{}", help="JSON: logical name -> table name")
    parser.add_argument("--buckets", default="", help="comma-separated bucket names")
    parser.add_argument("--reaper-interval", type=float, help="seconds between reaper rounds (default: no reaper)")
    args = parser.parse_args(argv)
    global _ready_fd
    sys.stdout.flush()
    _ready_fd = os.dup(1)
    os.dup2(2, 1)  # everything printed from now on goes to the stack's log, with stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s aws %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request costs throughput; the APIs log requests
    if args.parent:
        die_with_parent(args.parent)
    from local.persistence import StateLayoutError

    try:
        serve(args.host, args.port, args.state_dir, args.fresh, json.loads(args.tables), [b for b in args.buckets.split(",") if b],
              args.reaper_interval)
    except StateLayoutError as exc:
        announce({"ready": False, "error": str(exc)})
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

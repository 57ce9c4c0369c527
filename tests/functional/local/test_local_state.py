"""The local AWS's durable state under pressure: more objects than file descriptors, and a slow fsync.

Each test runs the real local AWS (``python -m local.aws_server``: moto's server with
``local.persistence``) as a subprocess with its own state directory and port, and
talks to it with boto3 as the handlers do.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.config import Config

from local.stack import TABLE_NAMES
from tests.support.local_stack import aws_client
from tests.support.waiting import free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "ipoc-state-test"
READY_TIMEOUT = 120.0

# The local AWS with os.fsync held open for large files until the test says so: the window a large
# upload spends in fsync made long and observable (the fsync itself still runs, after the gate).
GATED_FSYNC = """
import os, sys, time
from pathlib import Path
gate, real = Path(sys.argv[1]), os.fsync
def fsync(fd):
    if os.fstat(fd).st_size > 4 * 2**20:
        (gate / "fsyncing").touch()
        deadline = time.monotonic() + 120
        while not (gate / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    real(fd)
os.fsync = fsync
from local.aws_server import main
main(sys.argv[2:])
"""


@contextmanager
def local_aws(state_dir: Path, *, nofile: int | None = None, gate: Path | None = None) -> Iterator[dict[str, Any]]:
    """The local AWS on a free port until the block ends; ``nofile`` lowers its soft RLIMIT_NOFILE."""
    port = free_port()
    args = [
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        "--tables",
        json.dumps(TABLE_NAMES),
        "--buckets",
        BUCKET,
    ]
    command = (
        [sys.executable, "-c", GATED_FSYNC, str(gate), *args]
        if gate
        else [sys.executable, "-m", "local.aws_server", *args]
    )

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    env = {**os.environ, "IPOC_WARM_POOL": "0", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=ROOT, preexec_fn=limit
    )
    try:
        stdout = process.stdout
        assert stdout is not None
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT)
        ready = json.loads(lines[0]) if lines and lines[0] else {}
        assert ready.get("ready"), f"the local AWS did not start (exit {process.poll()}): {lines}"
        config = Config(retries={"max_attempts": 1}, read_timeout=30, connect_timeout=10, max_pool_connections=20)
        clients = {name: aws_client(f"http://127.0.0.1:{port}", name, config=config) for name in ("s3", "dynamodb")}
        yield {"ready": ready, **clients}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def test_restores_more_objects_than_the_process_may_open_files(tmp_path: Path) -> None:
    """Restored objects hold no file descriptor: a local AWS whose soft RLIMIT_NOFILE is below the object
    count restores and serves every one of them (it used to keep one descriptor open per object)."""
    state, limit, count = tmp_path / "state", 128, 300
    bodies = {f"artifacts/{n:04d}": f"object {n} ".encode() * (n % 7 + 1) for n in range(count)}
    with local_aws(state) as aws:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: aws["s3"].put_object(Bucket=BUCKET, Key=item[0], Body=item[1]), bodies.items()))
    with local_aws(state, nofile=limit) as aws:
        assert aws["ready"]["restored"]["objects"][BUCKET] == count > limit
        for key, body in bodies.items():
            assert aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
        pid = aws["ready"]["pid"]
        assert len(os.listdir(f"/proc/{pid}/fd")) < limit
        # AND an object replaced after the restore reads as the new one, also after another restart
        aws["s3"].put_object(Bucket=BUCKET, Key="artifacts/0001", Body=b"replaced")
        assert aws["s3"].get_object(Bucket=BUCKET, Key="artifacts/0001")["Body"].read() == b"replaced"
        aws["s3"].delete_object(Bucket=BUCKET, Key="artifacts/0002")
    with local_aws(state, nofile=limit) as aws:
        assert aws["ready"]["restored"]["objects"][BUCKET] == count - 1
        assert aws["s3"].get_object(Bucket=BUCKET, Key="artifacts/0001")["Body"].read() == b"replaced"
        assert aws["s3"].get_object(Bucket=BUCKET, Key="artifacts/0003")["Body"].read() == bodies["artifacts/0003"]


def test_requests_are_served_while_a_large_upload_is_being_fsynced(tmp_path: Path) -> None:
    """A large PUT fsyncs outside moto's lock: while its fsync is held, a GET, a small PUT and a DynamoDB
    read all answer; the large PUT answers only once its fsync is done, and its object is kept."""
    gate = tmp_path / "gate"
    gate.mkdir()
    large = os.urandom(8 * 2**20)
    with local_aws(tmp_path / "state", gate=gate) as aws:
        s3, dynamodb = aws["s3"], aws["dynamodb"]
        s3.put_object(Bucket=BUCKET, Key="small", Body=b"small")
        with ThreadPoolExecutor(1) as pool:
            upload = pool.submit(s3.put_object, Bucket=BUCKET, Key="large", Body=large)
            try:
                wait_until(
                    lambda: (gate / "fsyncing").exists() or upload.done(), timeout=60, what="the large upload's fsync"
                )
                assert not upload.done(), upload.result()
                assert s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == b"small"
                s3.put_object(Bucket=BUCKET, Key="small-2", Body=b"written meanwhile")
                assert (
                    dynamodb.get_item(
                        TableName=TABLE_NAMES["functions"], Key={"function": {"S": "absent"}, "item": {"S": "x"}}
                    ).get("Item")
                    is None
                )
                assert not upload.done(), "the large upload answered before its fsync was done"
            finally:
                (gate / "release").touch()
            assert upload.result(timeout=60)["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert s3.get_object(Bucket=BUCKET, Key="large")["Body"].read() == large
    with local_aws(tmp_path / "state") as aws:
        assert aws["s3"].get_object(Bucket=BUCKET, Key="large")["Body"].read() == large
        assert aws["s3"].get_object(Bucket=BUCKET, Key="small-2")["Body"].read() == b"written meanwhile"


def test_connections_are_kept_alive_and_framed_right(tmp_path: Path) -> None:
    """The local AWS keeps a connection for the next request (werkzeug's server closed each one): several
    requests on one socket, a HEAD (size but no body), a chunked PUT and a request whose body moto never
    reads all leave the connection in step, as http.client's own framing checks."""
    import http.client

    with local_aws(tmp_path / "state") as aws:
        s3 = aws["s3"]
        endpoint = s3.meta.endpoint_url.rpartition("/")[2]
        s3.put_object(Bucket=BUCKET, Key="framed", Body=b"0123456789")

        def signed(method: str, key: str) -> str:  # the path and query of a presigned URL (S3 refuses anonymous calls)
            url = s3.generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
            return url.split(endpoint, 1)[1]

        connection = http.client.HTTPConnection(endpoint, timeout=30)
        try:
            connection.request("HEAD", signed("head_object", "framed"))
            head = connection.getresponse()
            assert (head.status, head.getheader("Content-Length"), head.read()) == (200, "10", b"")
            first_socket = connection.sock
            connection.request(
                "PUT", signed("put_object", "chunked"), body=iter([b"abc", b"defg"]), encode_chunked=True
            )
            put = connection.getresponse()
            assert put.status == 200, put.read()
            put.read()
            connection.request("GET", signed("get_object", "nothing-here"), body=b"x" * 5000)  # a body nobody reads
            missing = connection.getresponse()
            assert missing.status == 404
            missing.read()
            connection.request("GET", signed("get_object", "chunked"))
            got = connection.getresponse()
            assert (got.status, got.read()) == (200, b"abcdefg")
            assert connection.sock is first_socket, "the connection was not kept"
        finally:
            connection.close()


def test_the_ready_line_counts_what_a_previous_stack_left_held(tmp_path: Path) -> None:
    """The stack reconciles (scans, frees, fails) only when the restored tables hold a slot or a live instance:
    the local AWS counts them from its restored items, with the instance statuses InstanceStore calls live."""
    from lambdas.shared.stores import InstanceStatus

    state = tmp_path / "state"
    with local_aws(state) as aws:
        assert aws["ready"]["held"] == {"slots": 0, "live_instances": 0}
        for name, status in (("gone", InstanceStatus.DELETED), ("failed", InstanceStatus.FAILED)):
            item = {"instance_id": {"S": name}, "function": {"S": "echo"}, "status": {"S": status.value}}
            aws["dynamodb"].put_item(TableName=TABLE_NAMES["instances"], Item=item)
    with local_aws(state) as aws:
        assert aws["ready"]["held"] == {"slots": 0, "live_instances": 0}  # ended ones hold nothing
        item = {"instance_id": {"S": "live"}, "function": {"S": "echo"}, "status": {"S": InstanceStatus.READY.value}}
        aws["dynamodb"].put_item(TableName=TABLE_NAMES["instances"], Item=item)
        slot = {"slot": {"S": "3014"}, "allocation": {"S": "live"}}
        aws["dynamodb"].put_item(TableName=TABLE_NAMES["slots"], Item=slot)
    with local_aws(state) as aws:
        assert aws["ready"]["held"] == {"slots": 1, "live_instances": 1}


def test_a_restart_restores_buckets_without_writing_their_files_again(tmp_path: Path) -> None:
    """A restored bucket's BUCKET.json is already on disk: the start does not write (and fsync) it again."""
    state = tmp_path / "state"
    with local_aws(state) as aws:
        aws["s3"].put_object(Bucket=BUCKET, Key="kept", Body=b"kept")
    marker = state / "s3" / BUCKET / "BUCKET.json"
    written = os.stat(marker)
    with local_aws(state) as aws:
        assert aws["ready"]["restored"]["objects"][BUCKET] == 1
        assert aws["s3"].get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"kept"
    again = os.stat(marker)
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_items_with_binary_values_are_kept_and_restored(tmp_path: Path) -> None:
    """A binary attribute (DynamoDB's B, BS) was refused with a 500 (its bytes did not go into the item's
    JSON file) after moto had already taken the item in memory."""
    state = tmp_path / "state"
    item = {"instance_id": {"S": "binary"}, "blob": {"B": b"\x00\xff"}, "blobs": {"BS": [b"a", b"\x01"]}}
    key = {"instance_id": {"S": "binary"}}
    with local_aws(state) as aws:
        aws["dynamodb"].put_item(TableName=TABLE_NAMES["instances"], Item=item)
        assert aws["dynamodb"].get_item(TableName=TABLE_NAMES["instances"], Key=key)["Item"] == item
    with local_aws(state) as aws:
        assert aws["dynamodb"].get_item(TableName=TABLE_NAMES["instances"], Key=key)["Item"] == item

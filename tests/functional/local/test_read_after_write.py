"""Reads reflect every acknowledged write on the real local AWS, under concurrency.

The control plane's reads take a lean path at both ends (``lambdas.shared.aws.get_item`` in the API
process, sent over ``local.dynamodb_transport``'s kept sockets; ``local.moto_patches.direct_dynamodb``
answering plain GetItems in the local AWS). Here the real
local AWS (``python -m local.aws_server``, with its durable state) serves writers that each update their own
record and at once read it back through the stores the handlers use, while readers follow every record: a
read never misses the write acknowledged before it, and never goes back to an older version.
"""

from __future__ import annotations

import threading
from pathlib import Path

from lambdas.shared import aws
from lambdas.shared.stores import InstanceStore
from local.dynamodb_transport import install_for_handlers
from local.stack import TABLE_NAMES
from tests.functional.local.test_local_state import local_aws

WRITERS, READERS, VERSIONS = 6, 3, 40


def test_every_read_sees_the_last_acknowledged_write(tmp_path: Path, monkeypatch) -> None:
    with local_aws(tmp_path / "state") as local:
        endpoint = local["dynamodb"].meta.endpoint_url
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(aws, "session", aws.session)  # restored after the test
        install_for_handlers()  # the API processes' reads go over the local transport, as here
        aws.reset()
        try:
            store = InstanceStore(TABLE_NAMES["instances"])
            asked_again: list[str] = []  # GetItems that went through boto3's own pipeline (its before-call hook)
            store.table.meta.client.meta.events.register(
                "before-call.dynamodb.GetItem", lambda **_: asked_again.append("GetItem")
            )
            writes = aws.client("dynamodb")
            failures: list[str] = []
            done = threading.Event()

            def write(writer: int) -> None:
                key = f"raw-{writer}"
                for version in range(1, VERSIONS + 1):
                    writes.put_item(
                        TableName=TABLE_NAMES["instances"],
                        Item={"instance_id": {"S": key}, "version": {"N": str(version)}, "status": {"S": "READY"}},
                    )
                    record = store.get(key)
                    if record is None or record["version"] != version:
                        failures.append(f"{key}: wrote version {version}, read {record}")
                writes.delete_item(TableName=TABLE_NAMES["instances"], Key={"instance_id": {"S": key}})
                if store.get(key) is not None:
                    failures.append(f"{key}: deleted, still read")

            def follow() -> None:
                seen = dict.fromkeys(range(WRITERS), 0)
                while not done.is_set():
                    for writer in range(WRITERS):
                        record = store.get(f"raw-{writer}")
                        version = record["version"] if record else None
                        if version is not None and version < seen[writer]:
                            failures.append(f"raw-{writer}: read version {version} after {seen[writer]}")
                        seen[writer] = max(seen[writer], version or 0)

            writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
            readers = [threading.Thread(target=follow) for _ in range(READERS)]
            for thread in readers + writers:
                thread.start()
            for thread in writers:
                thread.join(120)
            done.set()
            for thread in readers:
                thread.join(30)
            assert not any(thread.is_alive() for thread in readers + writers)
            assert failures == []
            assert asked_again == []  # every read took the lean path
        finally:
            aws.reset()

"""Item 8 acceptance, as a new user would try it: flood the runtime port with session opens and
garbage while another client streams 16 MiB; the stream completes intact. Slow: `make reliability`."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading

import pytest

from ipoc import rights
from runtime import manager as runtime_manager
from tests.security.runtime_support import client, client_hello, fresh, post
from tests.support import policies

CHUNK = 1 << 20
CHUNKS = 16
FLOOD_POSTS = 600  # per flooder: 200 each of empty opens, real ClientHellos and forged records


@pytest.mark.reliability
def test_a_16_mib_stream_survives_a_flood_of_session_opens(start_runtime):
    streamer = fresh("streamer")
    runtime = start_runtime(
        policies.vaas_policy([(streamer, [{"file_name": "/input/", "rights": int(rights.READ_WRITE)}])])
    )
    payload = os.urandom(CHUNK * CHUNKS)
    refusals: dict[int, int] = {}
    lock = threading.Lock()
    hello = base64.b64encode(client_hello())

    def flood() -> None:
        bodies = [
            b"0 AAAA",
            b"0 " + hello,
            f"{secrets.randbelow(1 << 32)} ".encode() + base64.b64encode(b"\x17\x03\x03\x00\x10" + b"\x00" * 16),
        ]
        for sent in range(FLOOD_POSTS):
            status, _ = post(runtime, bodies[sent % len(bodies)])
            with lock:
                refusals[status] = refusals.get(status, 0) + 1

    flooders = [threading.Thread(target=flood) for _ in range(2)]
    for thread in flooders:
        thread.start()
    try:
        with client(runtime, streamer) as c:
            for index in range(CHUNKS - 1):
                c.append_file("/input/stream", payload[index * CHUNK : (index + 1) * CHUNK])
            for thread in flooders:
                thread.join(120)
            # after the whole flood, the same session still works
            c.append_file("/input/stream", payload[(CHUNKS - 1) * CHUNK :])
            assert c.read_file("/input/stream")[-CHUNK:] == payload[-CHUNK:]
    finally:
        for thread in flooders:
            thread.join(120)
    stored = (runtime.scratch / "fs" / "input" / "stream").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(payload).hexdigest()
    # the flood really ran: opens past the handshake cap, and refusals for garbage
    assert refusals.get(200, 0) > runtime_manager.MAX_HANDSHAKES and refusals.get(500, 0) > 0, refusals

"""VeracruzClient against a real runtime: real TLS on loopback sockets, real wasmtime.

The proxy and runtime run in threads of the test process; nothing is mocked.
"""

from __future__ import annotations

import os
import sys

import pytest

from ipoc import errors
from ipoc.client import VeracruzClient
from tests.support import policies
from tests.support.waiting import wait_until


@pytest.fixture
def echo_runtime(start_runtime, ids, echo_wasm):
    vaas = policies.vaas_policy(
        [
            (ids.user, policies.USER_RIGHTS),
            (ids.loader, policies.LOADER_RIGHTS),
            (ids.streamer, [{"file_name": "/input/", "rights": 534084}]),
        ],
        file_hashes={policies.ECHO: echo_wasm},
    )
    return start_runtime(vaas)


def client_for(runtime, identity, **kwargs) -> VeracruzClient:
    return VeracruzClient(runtime.policy, identity.certificate, identity.private_key, **kwargs)


def test_full_timeline_loads_executes_and_reads_results(echo_runtime, ids, echo_wasm):
    # GIVEN a runtime with the echo policy
    # WHEN the loader writes the program and the user writes input, executes and reads
    with client_for(echo_runtime, ids.loader) as loader:
        assert loader.verified["policy_hash"] == loader.policy.hash
        loader.write_file(policies.ECHO, echo_wasm)
    with client_for(echo_runtime, ids.user) as user:
        user.write_file("/input/data.txt", b"hello enclave")
        user.write_file("/input/exit_code", b"7")
        code = user.execute(policies.ECHO)
        stdout = user.read_file("stdout")
        stderr = user.read_file("stderr")
        result = user.read_file("/output/result.txt")
    # THEN the program ran with its own rights and its outputs came back
    assert code == 7
    assert stdout == b"echo: read 13 bytes from input/data.txt\n"
    assert b"exiting with 7" in stderr
    assert result == b"ECHO 13\nHELLO ENCLAVE"


def test_shutdown_stops_the_server(echo_runtime, ids):
    with client_for(echo_runtime, ids.streamer) as streamer:
        streamer.shutdown()
    echo_runtime.thread.join(10)
    assert not echo_runtime.alive


def test_hashed_program_with_other_bytes_is_refused(echo_runtime, ids, echo_wasm):
    with client_for(echo_runtime, ids.loader) as loader:
        with pytest.raises(errors.FileHashMismatch, match="must hash to"):
            loader.write_file(policies.ECHO, echo_wasm + b"\0")
    with client_for(echo_runtime, ids.loader) as loader:
        # appending to a hashed path is refused whatever the bytes
        with pytest.raises(errors.FileHashMismatch, match="written whole"):
            loader.append_file(policies.ECHO, b"")


def test_identity_without_rights_is_refused(echo_runtime, ids):
    with client_for(echo_runtime, ids.streamer) as streamer:
        with pytest.raises(errors.AccessDenied, match="holds no rights on /output/result.txt"):
            streamer.read_file("/output/result.txt")


def test_execute_needs_file_execute(echo_runtime, ids, echo_wasm):
    with client_for(echo_runtime, ids.loader) as loader:
        loader.write_file(policies.ECHO, echo_wasm)
    with client_for(echo_runtime, ids.loader) as loader:
        with pytest.raises(errors.AccessDenied, match="lack FILE_EXECUTE"):
            loader.execute(policies.ECHO)


def test_empty_file_reads_as_no_result(echo_runtime, ids):
    with client_for(echo_runtime, ids.user) as user:
        user.write_file("/input/empty", b"")
    with client_for(echo_runtime, ids.user) as user:
        with pytest.raises(errors.NoResult):
            user.read_file("stderr")


def test_one_changed_policy_byte_is_refused_before_sending(echo_runtime, ids):
    # GIVEN the client's copy of the policy differs in one byte (still valid JSON)
    tampered = echo_runtime.policy.replace('"debug": true', '"debug": false', 1)
    assert tampered != echo_runtime.policy
    client = VeracruzClient(tampered, ids.user.certificate, ids.user.private_key)
    # WHEN it connects THEN it refuses, naming the policy hash
    with pytest.raises(errors.PolicyHashMismatch, match="policy hash mismatch"):
        client.connect()
    # AND nothing was written: the session never got past the hash check
    assert not any((echo_runtime.scratch / "fs").rglob("*.txt"))


def test_runtime_with_another_measurement_is_refused(start_runtime, ids):
    runtime = start_runtime(policies.vaas_policy([(ids.user, policies.USER_RIGHTS)]), measurement="ab" * 32)
    with pytest.raises(errors.RuntimeHashMismatch, match="measures abab"):
        client_for(runtime, ids.user).connect()


def test_certificate_outside_the_policy_cannot_connect(echo_runtime, ids):
    client = client_for(echo_runtime, ids.outsider, check_identity=False)
    with pytest.raises(errors.IdentityError, match="refused our identity"):
        client.connect()


def test_client_checks_its_own_identity_first(echo_runtime, ids):
    with pytest.raises(errors.IdentityError, match="not one of the policy's identities"):
        client_for(echo_runtime, ids.outsider)
    with pytest.raises(errors.IdentityError, match="does not match"):
        VeracruzClient(echo_runtime.policy, ids.user.certificate, ids.loader.private_key)


def test_proxy_chain_is_verified(start_runtime, ids, proxy):
    # A policy whose proxy_service_cert is another CA: the TLS chain check fails first.
    from ipoc.certs import new_identity

    runtime = start_runtime(policies.vaas_policy([(ids.user, policies.USER_RIGHTS)]))
    other_ca = new_identity("not-the-proxy").certificate
    doc = __import__("json").loads(runtime.policy)
    doc["proxy_service_cert"] = other_ca
    forged = __import__("json").dumps(doc, indent=4)
    with pytest.raises(errors.AttestationError, match="does not chain"):
        VeracruzClient(forged, ids.user.certificate, ids.user.private_key).connect()


def test_stream_file_appends_chunks(echo_runtime, ids):
    import io

    payload = bytes(range(256)) * 4096  # 1 MiB
    with client_for(echo_runtime, ids.streamer) as streamer:
        sent = streamer.stream_file("/input/big.bin", io.BytesIO(payload), chunk_size=100_000)
    assert sent == len(payload)
    assert (echo_runtime.scratch / "fs" / "input" / "big.bin").read_bytes() == payload


# How a chunk goes into posts (a post carries up to ~190 KB): (chunk size, client options).
LAYOUTS = {
    "one post a chunk": (10_000, {}),
    "two posts a chunk": (300_000, {}),
    "three posts a chunk, a window of one post": (500_000, {"pipeline": 1}),
}


def refuse_the_third_append(monkeypatch, how: str) -> tuple[list[int], list[int]]:
    """Have the runtime refuse the third append, with a FAILED_* status (session kept, as Veracruz may) or an
    HTTP 500 (session dropped); returns the appends it saw and the sizes of the posts it got after that."""
    from ipoc.wire import messages
    from runtime.manager import RuntimeManager
    from runtime.refusal import Refused

    appends: list[int] = []
    posts_after_the_refusal: list[int] = []
    dispatch, handle = RuntimeManager._dispatch, RuntimeManager.handle

    def refusing(self, session, pieces):
        if messages.parse_request(b"".join(pieces)).WhichOneof("message_oneof") == "append_file":
            appends.append(len(appends))
            if len(appends) == 3:
                if how == "status":
                    return messages.response(messages.Status.FAILED_GENERIC)
                raise Refused("AccessDenied", "no more appends")
        return dispatch(self, session, pieces)

    def counting(self, session_id, data, connection=None):
        if len(appends) == 3:
            posts_after_the_refusal.append(len(data))
        return handle(self, session_id, data, connection)

    monkeypatch.setattr(RuntimeManager, "_dispatch", refusing)
    monkeypatch.setattr(RuntimeManager, "handle", counting)
    return appends, posts_after_the_refusal


@pytest.mark.parametrize("how", ["status", "HTTP 500"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_refused_chunk_ends_the_stream_with_nothing_after_it(echo_runtime, ids, monkeypatch, layout, how):
    """A runtime may refuse an append with a status and keep the session (Veracruz answers FAILED_* so), or with
    an HTTP error; the next chunk, already encrypted while the runtime worked, must then never take effect, not
    even on close. A chunk over one post has its posts but the last sent early, before the refusal is read:
    the runtime may have them, but never the last post that would complete the append."""
    import io

    chunk_size, options = LAYOUTS[layout]
    appends, posts_after_the_refusal = refuse_the_third_append(monkeypatch, how)
    payload = bytes(range(256)) * (chunk_size * 10 // 256)  # a write and about nine appends
    with pytest.raises(errors.RequestRefused) as refused:
        with client_for(echo_runtime, ids.streamer, **options) as streamer:
            streamer.stream_file("/input/cut.bin", io.BytesIO(payload), chunk_size=chunk_size)
    assert refused.value.reason == ("FAILED_GENERIC" if how == "status" else "AccessDenied")
    assert appends == [0, 1, 2]  # nothing after the refused append, not even when the client closed
    assert (echo_runtime.scratch / "fs" / "input" / "cut.bin").read_bytes() == payload[: 3 * chunk_size]
    if layout == "two posts a chunk":  # the fourth append's first post came, early, and was never completed
        wait_until(lambda: posts_after_the_refusal, timeout=10, what="the early post at the runtime")
        assert len(posts_after_the_refusal) == 1 and posts_after_the_refusal[0] > 100_000, posts_after_the_refusal
    elif layout == "one post a chunk":
        assert posts_after_the_refusal == []


@pytest.mark.parametrize("how", ["status", "HTTP 500"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_interrupt_while_the_next_chunk_is_encrypted_leaves_it_out(echo_runtime, ids, monkeypatch, layout, how):
    """Ctrl-C landing right after the TLS write of the next append returns (its records are counted, nothing
    of it taken out of TLS yet), while the third append is refused: the caller sees the refusal, and the
    fourth append, whole in TLS's buffer, must not go out when the client closes (it did: a file spliced
    with a chunk missing)."""
    import io

    chunk_size, options = LAYOUTS[layout]
    appends, _ = refuse_the_third_append(monkeypatch, how)
    queue_posts, encrypted = VeracruzClient._queue_posts, []

    def interrupted(self):
        if sys._getframe(1).f_code.co_name == "_encrypt_ahead":
            encrypted.append(True)
            if len(encrypted) == 4:  # the fourth append (the first chunk is a write), while the third is awaited
                raise KeyboardInterrupt
        return queue_posts(self)

    monkeypatch.setattr(VeracruzClient, "_queue_posts", interrupted)
    payload = bytes(range(256)) * (chunk_size * 10 // 256)
    with pytest.raises(errors.RequestRefused):
        with client_for(echo_runtime, ids.streamer, **options) as streamer:
            streamer.stream_file("/input/cut.bin", io.BytesIO(payload), chunk_size=chunk_size)
    assert appends == [0, 1, 2]
    assert (echo_runtime.scratch / "fs" / "input" / "cut.bin").read_bytes() == payload[: 3 * chunk_size]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_stream_file_with_posts_sent_early_stores_every_byte(echo_runtime, ids, layout):
    import io

    chunk_size, options = LAYOUTS[layout]
    payload = os.urandom(chunk_size * 5 + 12_345)
    with client_for(echo_runtime, ids.streamer, **options) as streamer:
        assert streamer.stream_file("/input/whole.bin", io.BytesIO(payload), chunk_size=chunk_size) == len(payload)
        streamer.append_file("/input/whole.bin", b"and after")  # the session goes on after the stream
    assert (echo_runtime.scratch / "fs" / "input" / "whole.bin").read_bytes() == payload + b"and after"


def test_a_client_connects_again_after_its_session_was_dropped(echo_runtime, ids, monkeypatch):
    """A refusal drops the session with whatever was encrypted for it; connecting again starts from nothing
    (no session id, no TLS bytes of the old session before the new ClientHello)."""
    import io

    refuse_the_third_append(monkeypatch, "status")
    client = client_for(echo_runtime, ids.streamer)
    try:
        client.connect()
        with pytest.raises(errors.RequestRefused):
            client.stream_file("/input/cut.bin", io.BytesIO(bytes(600_000)), chunk_size=100_000)
        client.connect()
        client.write_file("/input/again.bin", b"new session")
    finally:
        client.close()
    assert (echo_runtime.scratch / "fs" / "input" / "again.bin").read_bytes() == b"new session"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_progress_callback_that_raises_ends_the_stream_with_nothing_after_it(echo_runtime, ids, layout):
    """The caller's progress callback raising (an interrupt, say) after the third chunk was stored: the fourth,
    already encrypted meanwhile (and its first post sent, when it needs two), must not take effect when the
    client closes, since the caller has seen the stream fail there."""
    import io

    chunk_size, options = LAYOUTS[layout]
    payload = bytes(range(256)) * (chunk_size * 10 // 256)
    calls = []

    def progress(sent: int) -> None:
        calls.append(sent)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with client_for(echo_runtime, ids.streamer, **options) as streamer:
            streamer.stream_file("/input/cut.bin", io.BytesIO(payload), chunk_size=chunk_size, progress=progress)
    assert (echo_runtime.scratch / "fs" / "input" / "cut.bin").read_bytes() == payload[: 3 * chunk_size]


def test_stream_file_sends_a_hashed_path_whole(echo_runtime, ids, echo_wasm):
    import io

    with client_for(echo_runtime, ids.loader) as loader:
        assert loader.stream_file(policies.ECHO, io.BytesIO(echo_wasm), chunk_size=1000) == len(echo_wasm)

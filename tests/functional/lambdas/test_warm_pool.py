"""The local backend's warm pool: real runtime processes that attest with the real proxy before their policy
is known, then serve one policy each, reached through the real VaaS handler over moto."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from moto import mock_aws

from ipoc import errors
from ipoc.client import VeracruzClient
from lambdas.vaas.handler import lambda_handler as vaas
from local import runtimes as local  # the local VaaS backend, named as before its move to local/
from local.runtimes import running_ports, start_pool, stop_pool
from runtime.measurement import measurement
from tests.support import policies
from tests.support.aws import call, configure
from tests.support.settings import use_settings
from tests.support.waiting import free_port_range, wait_until

SLOTS = 2


def _runtimes() -> set[int]:
    """Our runtime processes still alive (zombies do not count: they hold no port and run nothing)."""
    pids = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if "runtime" in proc.cmdline() and proc.status() != psutil.STATUS_ZOMBIE:
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


@pytest.fixture
def aws(monkeypatch, proxy, tmp_path: Path):
    base = free_port_range(SLOTS)
    state_dir = tmp_path / "runtimes"
    before = _runtimes()
    with mock_aws():
        names = configure(
            monkeypatch,
            IPOC_VAAS_BACKEND="local",
            IPOC_STATE_DIR=str(state_dir),
            IPOC_PROXY_URL=proxy.url,
            IPOC_PROXY_CERT=proxy.ca_pem,
            IPOC_RUNTIME_HASH=measurement(),
            IPOC_PORT_MIN=str(base),
            IPOC_PORT_MAX=str(base + SLOTS - 1),
            IPOC_WARM_POOL="1",
            # the test proxy certifies for a day, as Veracruz's: instances here live at most an hour
            IPOC_MAX_TTL="3600",
        )
        yield SimpleNamespace(names=names, state_dir=state_dir, base=base)
        stop_pool(state_dir)
        for port in running_ports(state_dir):
            local.stop_runtime(state_dir, port)
    # THEN (every test) no runtime process outlives the pool and its slots
    assert _runtimes() - before == set()


def created(ids) -> dict:
    vaas_policy = policies.vaas_policy([(ids.user, policies.USER_RIGHTS)])
    reply = call(vaas, "POST", "/veracruz", vaas_policy)
    assert reply.status == 201, reply.body
    return reply.json


def delete(reply: dict) -> None:
    port = json.loads(reply["policy"])["veracruz_server_url"].rsplit(":", 1)[1]
    deleted = call(vaas, "DELETE", f"/veracruz/veracruz-nitro-server:{port}?instance_hash={reply['instance_hash']}")
    assert deleted.status == 200, deleted.body


def waiting_pids(pool: local.WarmPool) -> list[int]:
    with pool._lock:
        return [warm.proc.pid for warm in pool._ready]


def test_a_warm_runtime_serves_exactly_one_policy_is_destroyed_after_and_the_pool_refills(aws, ids):
    pool = start_pool()
    assert pool is not None and pool.wait_full(60)
    [warm_pid] = waiting_pids(pool)
    # WHEN an instance is created
    reply = created(ids)
    port = int(json.loads(reply["policy"])["veracruz_server_url"].rsplit(":", 1)[1])
    # THEN the warm runtime serves it: its pid and log are the slot's, the pool keeps only waiting ones
    assert (aws.state_dir / str(port) / "pid").read_text() == str(warm_pid)
    assert "attested" in (aws.state_dir / str(port) / "runtime.log").read_text()
    assert str(warm_pid) not in {f.read_text() for f in (aws.state_dir / local.POOL_DIR).glob("*/pid")}
    # AND a client's checks pass unchanged (chain to the proxy CA, runtime hash, policy hash)
    with VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"hi")
    assert call(vaas, "GET", "/veracruz").json["veracruz"][0][f"veracruz-nitro-server:{port}"]["status"] == "OK"
    # AND the pool refills in the background with a new process
    wait_until(lambda: pool.ready_count() == 1, timeout=60, what="the pool refilled")
    assert waiting_pids(pool) != [warm_pid]
    # AND delete destroys the runtime: it never serves another policy
    delete(reply)
    assert not psutil.pid_exists(warm_pid) or psutil.Process(warm_pid).status() == psutil.STATUS_ZOMBIE
    second = created(ids)
    assert (aws.state_dir / str(port) / "pid").read_text() != str(warm_pid)
    delete(second)


def test_a_wrong_policy_hash_is_still_refused(aws, ids):
    pool = start_pool()
    assert pool is not None and pool.wait_full(60)
    reply = created(ids)
    document = json.loads(reply["policy"])
    document["debug"] = not document.get("debug", False)  # same URL and identities, another policy
    other = json.dumps(document)
    with pytest.raises(errors.PolicyHashMismatch):
        VeracruzClient(other, ids.user.certificate, ids.user.private_key).connect()
    delete(reply)


def test_pool_size_zero_starts_nothing_and_instances_start_as_before(aws, ids, monkeypatch):
    use_settings(monkeypatch, IPOC_WARM_POOL="0")
    assert start_pool() is None
    assert not (aws.state_dir / local.POOL_DIR).exists()
    reply = created(ids)
    with VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"hi")
    delete(reply)


def test_an_empty_pool_falls_back_to_a_cold_start(aws, ids, monkeypatch):
    pool = start_pool()
    assert pool is not None
    monkeypatch.setattr(pool, "take", lambda: None)  # every warm runtime still attesting
    reply = created(ids)
    with VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"hi")
    delete(reply)


def test_waiting_runtimes_exit_when_their_owner_goes_and_stop_pool_finds_leftovers(aws):
    pool = start_pool(size=2)
    assert pool is not None and pool.wait_full(60)
    first, second = waiting_pids(pool)
    # WHEN the owner's end of the pipe closes (as when the stack process dies), a waiting runtime exits 0
    warm = pool._ready[0]
    assert warm.proc.stdin is not None
    warm.proc.stdin.close()
    assert warm.proc.wait(30) == 0
    # AND a pool whose owner vanished without closing it (a crash) is found through its pid files
    with local._pools_lock:
        local._pools.clear()
    pool._closed = True
    with pool._lock:
        pool._lock.notify_all()
    stop_pool(aws.state_dir)
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    assert not (aws.state_dir / local.POOL_DIR).exists()
    del first


def test_a_warm_runtime_refuses_a_policy_for_another_proxy(proxy, tmp_path: Path, ids):
    """The attestation was made with one proxy's CA; a policy naming another proxy would fail clients' chain check."""
    cert = tmp_path / "proxy.pem"
    cert.write_text(proxy.ca_pem)
    port = free_port_range(1)
    text = policies.full_policy(
        policies.vaas_policy([(ids.user, policies.USER_RIGHTS)]),
        proxy_url="127.0.0.1:1",
        proxy_cert=proxy.ca_pem,
        measurement=measurement(),
        port=port,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "client",
            "runtime",
            "serve",
            "--warm",
            "--proxy-url",
            proxy.url,
            "--proxy-cert",
            str(cert),
            "--platform-dir",
            str(proxy.platform_dir),
            "--scratch-dir",
            str(tmp_path / "scratch"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        word, valid_until = proc.stdout.readline().split()
        assert word == b"attested" and int(valid_until) > time.time()  # and when its certificate expires
        out, err = proc.communicate(b"\n" + text.encode(), timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and b"listening" not in out
    assert b"attested with the proxy at" in err and b"127.0.0.1:1" in err


def test_stopping_the_pool_leaves_the_instances_it_served(aws, ids):
    pool = start_pool()
    assert pool is not None and pool.wait_full(60)
    reply = created(ids)
    stop_pool(aws.state_dir)
    with VeracruzClient(reply["policy"], ids.user.certificate, ids.user.private_key) as client:
        client.write_file("/input/data.txt", b"still served")
    delete(reply)


def test_a_warm_certificate_that_would_expire_before_an_instance_ends_is_not_handed_out(aws, ids, monkeypatch):
    """A warm runtime attested long before its instance starts: clients refuse an expired enclave certificate, so
    one that would expire before the longest instance (IPOC_MAX_TTL) could end must start cold instead."""
    pool = start_pool()
    assert pool is not None and pool.wait_full(60)
    [warm_pid] = waiting_pids(pool)
    with pool._lock:
        [warm] = pool._ready
    # GIVEN the proxy certified it for less than the longest instance may still live from now
    use_settings(monkeypatch, IPOC_MAX_TTL=str(int(warm.valid_until - time.time())))
    # WHEN an instance is created THEN it is served by a cold runtime, and the stale one is gone
    reply = created(ids)
    port = int(json.loads(reply["policy"])["veracruz_server_url"].rsplit(":", 1)[1])
    assert (aws.state_dir / str(port) / "pid").read_text() != str(warm_pid)
    wait_until(
        lambda: not psutil.pid_exists(warm_pid) or psutil.Process(warm_pid).status() == psutil.STATUS_ZOMBIE,
        timeout=30,
        what="the stale warm runtime to stop",
    )
    delete(reply)

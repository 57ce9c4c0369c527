"""The Nitro path end to end without hardware: the proxy over real sockets, ``ipoc runtime serve --platform
nitro-sim`` and ``ipoc veracruz`` as subprocesses.

Nothing is mocked but the NSM itself (no Nitro hardware here): the simulated
NSM writes documents in AWS's format under this installation's test root,
which the local proxy trusts in place of AWS's.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ipoc.policy import Infrastructure, complete_policy
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.carrier import port_open, split_url
from ipoc.wire.framing import frame
from runtime.evidence import SimulatedNsm
from runtime.measurement import nitro_sim_pcr0, nitro_sim_pcrs
from tests.support import policies, processes
from tests.support.sockets import read_http_answer
from tests.support.waiting import free_port, wait_until


def raw_post(
    url: str, route: str, message: pb.ProxyAttestationServerRequest, expect_continue: bool = False
) -> tuple[bytes, bytes]:
    """POST as veracruz-server's libcurl does, over a raw socket: returns (status line, body)."""
    host, port = split_url(url)
    body = base64.b64encode(frame(message.SerializeToString()))
    head = (
        f"POST {route} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        if expect_continue:
            sock.sendall((head + "Expect: 100-continue\r\n\r\n").encode())
            interim = read_http_answer(sock)
            assert interim.raw.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.raw
            sock.sendall(body)
        else:
            sock.sendall(head.encode() + b"\r\n" + body)
        reply = read_http_answer(sock)
    return reply.status_line, reply.body


def decode(body: bytes) -> pb.ProxyAttestationServerResponse:
    raw = base64.b64decode(body, validate=True)
    assert int.from_bytes(raw[:8], "big") == len(raw) - 8  # the 8-byte big-endian length prefix
    reply = pb.ProxyAttestationServerResponse()
    reply.ParseFromString(raw[8:])
    return reply


def test_proxy_speaks_veracruz_nitro_wire(proxy):
    start = pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="nitro", firmware_version="0.0"))
    status, body = raw_post(proxy.url, "/Start", start)
    assert status == b"HTTP/1.1 200 OK"  # veracruz-server accepts nothing else
    init = decode(body).psa_attestation_init
    assert len(init.challenge) == 32 and init.device_id > 0

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "VeracruzCompute")]))
        .sign(key, hashes.SHA256())
    )
    doc = SimulatedNsm.load_or_create(proxy.platform_dir).attestation_document(
        pcrs=nitro_sim_pcrs(), user_data=csr.public_bytes(serialization.Encoding.DER), nonce=init.challenge
    )
    token = pb.ProxyAttestationServerRequest(
        nitro_attestation_doc=pb.NitroAttestationDoc(doc=doc, device_id=init.device_id)
    )
    status, body = raw_post(proxy.url, "/Nitro/AttestationToken", token, expect_continue=True)
    assert status == b"HTTP/1.1 200 OK", body
    chain = decode(body).cert_chain
    assert chain.root_cert == x509.load_pem_x509_certificate(proxy.ca_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    extension = x509.load_der_x509_certificate(chain.enclave_cert).extensions.get_extension_for_oid(
        x509.ObjectIdentifier("2.5.30.1")
    )
    assert extension.value.value == bytes.fromhex(nitro_sim_pcr0())[:32]

    # the same challenge a second time: refused, with a reason
    status, body = raw_post(proxy.url, "/Nitro/AttestationToken", token)
    assert status.startswith(b"HTTP/1.1 400")
    refusal = json.loads(body)
    assert refusal["error"] == "InvalidRequest" and "already used" in refusal["message"]


@pytest.fixture
def identity_files(tmp_path: Path, ids, echo_wasm) -> Path:
    for name in ("user", "loader"):
        getattr(ids, name).write(tmp_path / f"{name}.crt", tmp_path / f"{name}.key")
    (tmp_path / "echo.wasm").write_bytes(echo_wasm)
    (tmp_path / "data.txt").write_text("nitro hello")
    return tmp_path


def nitro_policy(proxy, ids, echo_wasm, runtime_hash: str) -> str:
    vaas = policies.vaas_policy(
        [(ids.user, policies.USER_RIGHTS), (ids.loader, policies.LOADER_RIGHTS)], file_hashes={policies.ECHO: echo_wasm}
    )
    infra = Infrastructure(
        proxy_attestation_server_url=proxy.url,
        proxy_service_cert=proxy.ca_pem,
        runtime_hash=runtime_hash,
        veracruz_server_url=f"127.0.0.1:{free_port()}",
        platform="nitro",
    )
    return complete_policy(vaas, infra)["policy"]


def serve(policy_text: str, files: Path, name: str, *extra: str) -> processes.Process:
    policy = files / f"{name}.json"
    policy.write_text(policy_text)
    return processes.start(["runtime", "serve", str(policy), "--platform", "nitro-sim", *extra], files / f"{name}.log")


@pytest.mark.slow
def test_nitro_sim_session_checks_pcr0_against_the_policy(proxy, ids, echo_wasm, identity_files):
    files = identity_files
    measured = processes.run(["runtime", "measurement", "--platform", "nitro-sim"])
    assert measured.returncode == 0 and measured.stdout.strip() == nitro_sim_pcr0()[:64]
    text = nitro_policy(proxy, ids, echo_wasm, measured.stdout.strip())
    runtime = serve(text, files, "policy")
    try:
        host, port = split_url(json.loads(text)["veracruz_server_url"])
        wait_until(
            lambda: port_open(host, port) or runtime.proc.poll() is not None, timeout=60, what="the runtime's port"
        )
        assert runtime.proc.poll() is None, runtime.output()

        def veracruz(who: str, *args: str):
            return processes.run(
                [
                    "veracruz",
                    str(files / "policy.json"),
                    "--identity",
                    str(files / f"{who}.crt"),
                    "--key",
                    str(files / f"{who}.key"),
                    *args,
                ]
            )

        loaded = veracruz("loader", "--program", f"{policies.ECHO}={files / 'echo.wasm'}")
        assert loaded.returncode == 0, loaded.stderr
        assert f"Verified runtime hash {nitro_sim_pcr0()[:64]}" in loaded.stderr
        run = veracruz(
            "user",
            "--data",
            f"/input/data.txt={files / 'data.txt'}",
            "--compute",
            policies.ECHO,
            "--result",
            "stdout=-",
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout == "echo: read 11 bytes from input/data.txt\n"
        assert runtime.proc.wait(10) == 0, runtime.output()
    finally:
        runtime.stop()


@pytest.mark.slow
def test_nitro_sim_runtime_with_another_pcr0_is_refused_by_the_proxy(proxy, ids, echo_wasm, identity_files):
    text = nitro_policy(proxy, ids, echo_wasm, "cd" * 32)
    runtime = serve(text, identity_files, "other", "--simulate-measurement", "cd" * 48)
    try:
        assert runtime.proc.wait(60) == 1
    finally:
        runtime.stop()
    assert f"pcr0: PCR0 {'cd' * 48} is not in the allow-list" in runtime.output()

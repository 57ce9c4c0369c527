"""Protobuf encodings checked byte for byte against the wire reference's field numbers, and framing."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipoc.wire import messages
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.carrier import MAX_BODY, MAX_RAW_PER_POST, decode_reply, encode_body
from ipoc.wire.framing import FrameDecoder, FrameTooLarge, frame


def key(field: int, wire_type: int) -> bytes:
    return bytes([field << 3 | wire_type])


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field (payloads here are < 128 bytes)."""
    return key(field, 2) + bytes([len(payload)]) + payload


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (messages.write_file("/in/a", b"xy"), ld(2, ld(1, b"/in/a") + ld(2, b"xy"))),
        (messages.append_file("in/a", b"z"), ld(3, ld(1, b"/in/a") + ld(2, b"z"))),
        (messages.execute("/p.wasm"), ld(5, ld(1, b"/p.wasm"))),
        (messages.request_shutdown(), ld(8, b"")),
        (messages.request_policy_hash(), ld(10, b"")),
        (messages.read_file("stdout"), ld(11, ld(1, b"stdout"))),
        (
            pb.RuntimeManagerRequest(request_pi_hash=pb.RequestPiHash(file_name="f")).SerializeToString(),
            ld(4, ld(1, b"f")),
        ),
        (
            pb.RuntimeManagerRequest(
                psa_attestation_init=pb.PsaAttestationInit(challenge=b"c", device_id=3)
            ).SerializeToString(),
            ld(9, ld(1, b"c") + key(2, 0) + b"\x03"),
        ),
        (
            pb.RuntimeManagerRequest(
                context=5, request_proxy_psa_attestation_token=pb.RequestProxyPsaAttestationToken(challenge=b"q")
            ).SerializeToString(),
            key(1, 0) + b"\x05" + ld(6, ld(1, b"q")),
        ),
    ],
)
def test_request_encodings(built, expected):
    assert built == expected


def test_response_encodings():
    assert messages.response(result=b"\x07\0\0\0") == key(1, 0) + b"\x01" + ld(4, ld(1, b"\x07\0\0\0"))
    assert messages.response(policy_hash="ab") == key(1, 0) + b"\x01" + ld(11, ld(1, b"ab"))
    assert messages.response(messages.Status.FAILED_INVALID_REQUEST) == key(1, 0) + b"\x07"
    response = pb.RuntimeManagerResponse(status=1, context=2, cert=pb.Cert(data=b"d"))
    assert response.SerializeToString() == key(1, 0) + b"\x01" + key(8, 0) + b"\x02" + ld(12, ld(1, b"d"))
    for field, name in [(5, "pi_hash"), (6, "error"), (10, "state")]:
        message = pb.RuntimeManagerResponse()
        getattr(message, name).SetInParent()
        assert message.SerializeToString() == ld(field, b"")
    assert [pb.ResponseStatus.Name(i) for i in range(8)] == [
        "UNSET",
        "SUCCESS",
        "FAILED_INVALID_ROLE",
        "FAILED_NOT_READY",
        "FAILED_GENERIC",
        "FAILED_VM_ERROR",
        "FAILED_ERROR_CODE_RETURNED",
        "FAILED_INVALID_REQUEST",
    ]


def test_proxy_message_encodings():
    start = pb.ProxyAttestationServerRequest(start_msg=pb.StartMsg(protocol="psa", firmware_version="0.0"))
    assert start.SerializeToString() == ld(2, ld(1, b"psa") + ld(2, b"0.0"))
    token = pb.ProxyAttestationServerRequest(
        native_psa_attestation_token=pb.NativePsaAttestationToken(token=b"t", device_id=1, csr=b"c")
    )
    assert token.SerializeToString() == ld(3, ld(1, b"t") + key(2, 0) + b"\x01" + ld(3, b"c"))
    nitro = pb.ProxyAttestationServerRequest(nitro_attestation_doc=pb.NitroAttestationDoc(doc=b"d", device_id=2))
    assert nitro.SerializeToString() == ld(7, ld(1, b"d") + key(2, 0) + b"\x02")
    chain = pb.ProxyAttestationServerResponse(cert_chain=pb.CertChain(root_cert=b"r", enclave_cert=b"e"))
    assert chain.SerializeToString() == ld(5, ld(1, b"r") + ld(2, b"e"))
    init = pb.ProxyAttestationServerResponse(psa_attestation_init=pb.PsaAttestationInit(challenge=b"c", device_id=1))
    assert init.SerializeToString() == ld(2, ld(1, b"c") + key(2, 0) + b"\x01")


def test_client_path_prefixing():
    assert messages.enclave_path("stdin") == "stdin"
    assert messages.enclave_path("output/x") == "/output/x"
    assert messages.enclave_path("/output/x") == "/output/x"


def test_exit_code_is_little_endian_u32():
    assert messages.exit_code_bytes(258) == b"\x02\x01\0\0"
    assert messages.exit_code_from(b"\xff\xff\xff\xff") == 2**32 - 1
    with pytest.raises(ValueError):
        messages.exit_code_from(b"\0")


def test_frame_is_eight_byte_big_endian_length():
    assert frame(b"abc") == b"\0\0\0\0\0\0\0\x03abc"
    assert struct.unpack(">Q", frame(b"x" * 300)[:8]) == (300,)


def test_decoder_handles_split_and_batched_messages():
    decoder = FrameDecoder()
    stream = frame(b"one") + frame(b"") + frame(b"three")
    assert decoder.feed(stream[:5]) == []  # inside the first header
    assert decoder.feed(stream[5:12]) == [b"one"]
    assert decoder.pending == 1
    assert decoder.feed(stream[12:]) == [b"", b"three"]
    assert decoder.pending == 0


def test_decoder_refuses_oversized_messages():
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_message=10).feed(frame(b"x" * 11))


@given(st.lists(st.binary(max_size=300), max_size=8), st.randoms())
def test_decoder_reassembles_any_split(payloads, rnd: random.Random):
    decoder = FrameDecoder()
    out: list[bytes] = []
    for piece in _framed_in_random_pieces(payloads, rnd):
        out += decoder.feed(piece)
    assert out == payloads


def _framed_in_random_pieces(payloads: list[bytes], rnd: random.Random) -> list[bytes]:
    """The payloads framed one after the other, cut at up to six random places (as a socket may deliver them)."""
    stream = b"".join(frame(p) for p in payloads)
    cuts = sorted(rnd.randint(0, len(stream)) for _ in range(rnd.randint(0, 6)))
    return [stream[start:end] for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def test_post_bodies_stay_under_the_limit():
    body = encode_body(4294967295, b"\xff" * MAX_RAW_PER_POST)
    assert len(body) < MAX_BODY
    assert decode_reply(b"7 " + body.split()[1] + b" " + body.split()[1]) == (7, b"\xff" * MAX_RAW_PER_POST * 2)
    assert decode_reply(b"") == (None, b"")


def test_generated_code_is_up_to_date(tmp_path):
    """transport_protocol_pb2.py and its .pyi (what mypy reads) are committed; regenerating them must change nothing."""
    from pathlib import Path

    from grpc_tools import protoc

    wire = Path(messages.__file__).parent
    proto = str(wire / "transport_protocol.proto")
    assert protoc.main(["protoc", f"-I{wire}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", proto]) == 0
    for name in ("transport_protocol_pb2.py", "transport_protocol_pb2.pyi"):
        assert (tmp_path / name).read_text() == (wire / name).read_text(), f"{name} is stale: run make proto"


@given(
    kind=st.sampled_from(["write_file", "append_file"]),
    path=st.text(min_size=0, max_size=300),
    size=st.sampled_from([0, 1, 127, 128, 16383, 16384, 16385, (1 << 20) + 7]),
)
def test_data_requests_serialize_as_protobuf_does(kind, path, size):
    """The (head, data) pieces a chunk is sent as are protobuf's own serialization (the oracle), and parse back."""
    data = random.randbytes(size)
    head, body = messages.data_request(kind, path, data)
    expected = pb.RuntimeManagerRequest(
        **{kind: pb.Data(file_name=messages.enclave_path(path), data=data)}
    ).SerializeToString()
    assert body is data and head + body == expected
    parsed = getattr(messages.parse_request(head + body), kind)
    assert (parsed.file_name, parsed.data) == (messages.enclave_path(path), data)


def _cut(raw: bytes, rnd: random.Random) -> list[bytes | memoryview]:
    """``raw`` in random pieces, some bytes and some views, as a message arrives in TLS records."""
    cuts = sorted({rnd.randint(1, max(1, len(raw) - 1)) for _ in range(rnd.randint(0, 6))} - {len(raw)})
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    return [memoryview(p) if rnd.random() < 0.5 else p for p in pieces]


def _protobuf_reading(raw: bytes) -> tuple[str | None, str, bytes] | str:
    """What protobuf (the oracle) makes of ``raw``: (kind, file name, data), or "refused"."""
    try:
        request = messages.parse_request(raw)
    except Exception:  # noqa: BLE001 - DecodeError, whatever protobuf raises
        return "refused"
    kind = request.WhichOneof("message_oneof")
    if kind not in ("write_file", "append_file"):
        return kind, "", b""
    return kind, getattr(request, kind).file_name, getattr(request, kind).data


@given(
    kind=st.sampled_from(["write_file", "append_file"]),
    path=st.text(min_size=0, max_size=300),
    size=st.sampled_from([0, 1, 127, 128, 16383, 16385, 70000]),
    rnd=st.randoms(),
)
def test_data_requests_read_from_their_pieces_as_protobuf_reads_them(kind, path, size, rnd):
    """A write or append, serialized by protobuf itself and cut anywhere, reads as protobuf reads it."""
    data = random.randbytes(size)
    raw = pb.RuntimeManagerRequest(**{kind: pb.Data(file_name=path, data=data)}).SerializeToString()
    pieces = _cut(raw, rnd)
    got = messages.parse_data_request(pieces)
    if got is None:  # left to protobuf: only an empty name or empty data, which it reads as quickly
        assert not path or not size
        return
    assert (got[0], got[1], b"".join(got[2])) == _protobuf_reading(raw)
    assert all(isinstance(p, memoryview) or any(p is q for q in pieces) for p in got[2])  # views, no copies


@pytest.mark.parametrize(
    "raw",
    [
        ld(2, ld(2, b"xy") + ld(1, b"/in/a")),  # data before the name
        key(1, 0) + b"\x07" + ld(2, ld(1, b"/in/a") + ld(2, b"xy")),  # a context field first
        ld(2, ld(1, b"/in/a") + ld(2, b"xy")) + key(1, 0) + b"\x07",  # a context field after
        ld(2, ld(1, b"/in/a") + ld(2, b"xy") + ld(2, b"zz")),  # data twice (protobuf keeps the last)
        ld(2, ld(1, b"/in/a") + ld(2, b"xy") + ld(9, b"?")),  # an unknown field
        ld(2, ld(1, b"/in/\xff") + ld(2, b"xy")),  # a name that is not UTF-8
        ld(2, ld(1, b"/in/a") + ld(2, b"xy"))[:-1],  # cut short
        ld(2, ld(1, b"/in/a") + ld(2, b"xy")) + ld(3, ld(1, b"/in/b") + ld(2, b"q")),  # two requests in one
        ld(2, ld(1, b"/in/a") + key(2, 2) + b"\x82\x00" + b"xy"),  # an over-long varint (protobuf accepts it)
        ld(11, ld(1, b"stdout")),  # a read
    ],
)
def test_other_layouts_read_as_protobuf_reads_them(raw):
    """Whatever the fast reading takes, it reads as protobuf does; the rest it leaves to protobuf."""
    for pieces in ([raw], [raw[:3], memoryview(raw)[3:]], [bytes([b]) for b in raw]):
        got = messages.parse_data_request(pieces)
        if got is not None:
            assert (got[0], got[1], b"".join(got[2])) == _protobuf_reading(raw)


@given(st.lists(st.binary(max_size=300), max_size=8), st.randoms())
def test_decoder_pieces_join_to_the_messages(payloads, rnd: random.Random):
    decoder = FrameDecoder()
    out: list[bytes] = []
    for piece in _framed_in_random_pieces(payloads, rnd):
        for message in decoder.feed_pieces(memoryview(piece) if rnd.random() < 0.5 else piece):
            assert message  # never an empty list, even for an empty message
            out.append(b"".join(message))
    assert out == payloads

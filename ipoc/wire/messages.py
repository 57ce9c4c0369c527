"""Build and parse the runtime manager's protobuf messages.

Paths follow veracruz-client: every path except ``stdin``, ``stdout`` and
``stderr`` is made absolute before it goes on the wire.
"""

from __future__ import annotations

import struct

from ipoc.rights import STREAMS
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.framing import Buffer

Status = pb.ResponseStatus


def enclave_path(path: str) -> str:
    """The path as the client sends it: absolute unless it is a standard stream."""
    return path if path in STREAMS or path.startswith("/") else "/" + path


_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_head(number: int, length: int) -> bytes:
    """A length-delimited field's key and length, the bytes protobuf puts before its payload."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(length)


def data_request(kind: str, path: str, data: Buffer) -> tuple[bytes, Buffer]:
    """``write_file`` or ``append_file`` (``kind``) of ``data`` to ``path``, serialized as (head, data):
    head followed by data are the bytes ``SerializeToString`` makes, without the two copies of
    ``data`` it makes (into the message, then out of it): a streamed chunk is copied once, by TLS."""
    field = pb.RuntimeManagerRequest.DESCRIPTOR.fields_by_name[kind].number
    name = enclave_path(path).encode()
    data_field = pb.Data.DESCRIPTOR.fields_by_name["data"].number
    size = len(memoryview(data).cast("B"))
    inner = _field_head(pb.Data.DESCRIPTOR.fields_by_name["file_name"].number, len(name)) + name if name else b""
    if size:  # proto3 leaves an empty bytes field out
        inner += _field_head(data_field, size)
    return _field_head(field, len(inner) + size) + inner, data


def write_file(path: str, data: Buffer) -> bytes:
    return b"".join(data_request("write_file", path, data))


def append_file(path: str, data: Buffer) -> bytes:
    return b"".join(data_request("append_file", path, data))


def read_file(path: str) -> bytes:
    return pb.RuntimeManagerRequest(read_file=pb.Read(file_name=enclave_path(path))).SerializeToString()


def execute(path: str) -> bytes:
    """``request_result``: run the program at ``path``."""
    return pb.RuntimeManagerRequest(request_result=pb.RequestResult(file_name=enclave_path(path))).SerializeToString()


def request_policy_hash() -> bytes:
    return pb.RuntimeManagerRequest(request_policy_hash=pb.RequestPolicyHash()).SerializeToString()


def request_shutdown() -> bytes:
    return pb.RuntimeManagerRequest(request_shutdown=pb.RequestShutdown()).SerializeToString()


def parse_request(data: bytes) -> pb.RuntimeManagerRequest:
    message = pb.RuntimeManagerRequest()
    message.ParseFromString(data)
    return message


def parse_response(data: bytes) -> pb.RuntimeManagerResponse:
    message = pb.RuntimeManagerResponse()
    message.ParseFromString(data)
    return message


def response(
    status: pb.ResponseStatus = Status.SUCCESS, *, result: bytes | None = None, policy_hash: str | None = None
) -> bytes:
    message = pb.RuntimeManagerResponse(status=status)
    if result is not None:
        message.result.data = result
    if policy_hash is not None:
        message.policy_hash.data = policy_hash.encode("ascii")
    return message.SerializeToString()


def exit_code_bytes(code: int) -> bytes:
    """An execution's result: the exit code as a 4-byte little-endian u32."""
    return struct.pack("<I", code & 0xFFFFFFFF)


def exit_code_from(data: bytes) -> int:
    if len(data) != 4:
        raise ValueError(f"an exit code is 4 bytes, got {len(data)}")
    (code,) = struct.unpack("<I", data)
    return int(code)

"""Build and parse the runtime manager's protobuf messages.

Paths follow veracruz-client: every path except ``stdin``, ``stdout`` and
``stderr`` is made absolute before it goes on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

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


def _read_varint(buffer: Buffer, position: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it; ValueError past the buffer or 10 bytes."""
    value = shift = 0
    for index in range(position, min(position + 10, len(buffer))):
        byte = buffer[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    raise ValueError("no whole varint")


_STORES = {
    _field_head(pb.RuntimeManagerRequest.DESCRIPTOR.fields_by_name[kind].number, 0)[:1]: kind
    for kind in ("write_file", "append_file")
}
_NAME_KEY = _field_head(pb.Data.DESCRIPTOR.fields_by_name["file_name"].number, 0)[:1]
_DATA_KEY = _field_head(pb.Data.DESCRIPTOR.fields_by_name["data"].number, 0)[:1]
_HEAD_SPAN = 4096  # the bytes read for a request's head: keys, lengths and a path (NAME_MAX 255, PATH_MAX 4096)


def _first_bytes(pieces: Sequence[Buffer], count: int) -> bytes:
    """The first ``count`` bytes of the pieces, joining only as many pieces as they span."""
    taken: list[Buffer] = []
    held = 0
    for piece in pieces:
        if held >= count:
            break
        taken.append(piece)
        held += len(piece)
    return b"".join(taken)[:count]


def parse_data_request(pieces: Sequence[Buffer]) -> tuple[str, str, list[Buffer]] | None:
    """A ``write_file`` or ``append_file`` in the layout :func:`data_request` makes (file name, then data),
    given as the pieces its message arrived in: (kind, path, data as views of those pieces), copying no
    data. None for any other request or layout, which :func:`parse_request` then reads (protobuf's
    result for this layout is the same: the tests hold the two side by side); a file name that is not
    UTF-8 is left to protobuf to refuse."""
    total = sum(len(piece) for piece in pieces)
    head = pieces[0] if pieces and len(pieces[0]) >= min(total, _HEAD_SPAN) else _first_bytes(pieces, _HEAD_SPAN)
    try:
        kind = _STORES.get(bytes(head[:1]))
        if kind is None:
            return None
        inner, position = _read_varint(head, 1)
        if position + inner != total or head[position : position + 1] != _NAME_KEY:
            return None
        length, position = _read_varint(head, position + 1)
        raw_name = bytes(head[position : position + length])
        if not raw_name or len(raw_name) != length:
            return None
        name = raw_name.decode("utf-8")
        position += length
        if position == total:
            return None  # no data field (an empty write): protobuf's reading is as quick
        if head[position : position + 1] != _DATA_KEY:
            return None
        size, position = _read_varint(head, position + 1)
    except (ValueError, UnicodeDecodeError):
        return None
    if position + size != total or size == 0:
        return None
    data: list[Buffer] = []
    for piece in pieces:  # skip the head's ``position`` bytes, keep the rest as views
        if position >= len(piece):
            position -= len(piece)
            continue
        data.append(memoryview(piece)[position:] if position else piece)
        position = 0
    return kind, name, data


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

"""A full policy read exactly as Veracruz v1.3's ``Policy::from_json`` reads it.

The oracle is policy-utils at tag ``iotex-demo-v.1.3.0``: serde 1.0.136 /
serde_json 1.0.79 derive the parser from the Rust types below, then
``assert_valid`` checks identities and the ciphersuite. Python's ``json`` is
more lenient in places (duplicate keys, ``-0``, floats for integers, NaN), so
numbers and objects are kept in raw form here and every field is decoded by
the Rust type it has. docs/veracruz-policy-parity.md lists each rule with its
source line; tests/compat/ checks every row.

The result is a normalised document (struct fields only, in the struct's
order; arrays written in place of structs and ``{"JIT": null}`` are turned
into their object and string forms) so the rest of the code reads one shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ipoc.errors import PolicyError

END_CERTIFICATE = "-----END CERTIFICATE-----"

# mbedTLS 3.2.1's TLS 1.3 suites (ssl_ciphersuites.c:295-334) → OpenSSL's names for them.
TLS13_SUITES = {
    "TLS1-3-AES-256-GCM-SHA384": "TLS_AES_256_GCM_SHA384",
    "TLS1-3-AES-128-GCM-SHA256": "TLS_AES_128_GCM_SHA256",
    "TLS1-3-AES-128-CCM-SHA256": "TLS_AES_128_CCM_SHA256",
    "TLS1-3-AES-128-CCM-8-SHA256": "TLS_AES_128_CCM_8_SHA256",
    "TLS1-3-CHACHA20-POLY1305-SHA256": "TLS_CHACHA20_POLY1305_SHA256",
}

_U64_MAX = 2**64 - 1
_I64_MIN = -(2**63)


class _Float(str):
    """A JSON number serde_json reads as f64: it has '.', an exponent, is ``-0``, or overflows 64 bits."""


class _Object(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


def _parse_int(text: str) -> int | _Float:
    value = int(text)
    if text == "-0" or not _I64_MIN <= value <= _U64_MAX:
        return _Float(text)
    return value


def _refuse_constant(name: str) -> Any:
    raise PolicyError(f"expected value (serde_json refuses {name}): the policy is not JSON")


def _float_text(raw: _Float) -> str:
    """How serde prints the float in its error (``256.0`` prints as ``256``)."""
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        return str(raw)
    if value.is_integer() and abs(value) < 1e16:
        return "-0" if str(raw).startswith("-") and value == 0 else str(int(value))
    return repr(value)


def _kind(value: Any) -> str:
    """serde's name for what it found (``invalid type: <kind>, expected ...``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, _Float):
        return f"floating point `{_float_text(value)}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, _Object):
        return "map"
    return "sequence"


def _fail(where: str, message: str) -> PolicyError:
    return PolicyError(f"{where}: {message} (Veracruz v1.3's policy parser refuses this)", path=where)


Decoder = Callable[[Any, str], Any]


def _unsigned(bits: int) -> Decoder:
    name, top = f"u{bits}", 2**bits - 1

    def decode(value: Any, where: str) -> int:
        if type(value) is not int:
            raise _fail(where, f"invalid type: {_kind(value)}, expected {name}")
        if not 0 <= value <= top:
            raise _fail(where, f"invalid value: integer `{value}`, expected {name}")
        return value

    return decode


def _string(value: Any, where: str) -> str:
    if type(value) is not str:
        raise _fail(where, f"invalid type: {_kind(value)}, expected a string")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise _fail(where, "lone leading surrogate in hex escape")
    return value


def _boolean(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, f"invalid type: {_kind(value)}, expected a boolean")
    return value


class _Option:
    """``Option<T>``: null or the inner type; a struct field of this type may be missing."""

    def __init__(self, inner: Decoder) -> None:
        self.inner = inner

    def __call__(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner(value, where)


def _option(inner: Decoder) -> Decoder:
    return _Option(inner)


def _vec(inner: Decoder) -> Decoder:
    def decode(value: Any, where: str) -> list[Any]:
        if type(value) is not list:
            raise _fail(where, f"invalid type: {_kind(value)}, expected a sequence")
        return [inner(item, f"{where}[{index}]") for index, item in enumerate(value)]

    return decode


def _execution_strategy(value: Any, where: str) -> str:
    """An externally tagged enum of unit variants: ``"JIT"`` or ``{"JIT": null}``."""
    variants = ("Interpretation", "JIT")
    if isinstance(value, _Object):
        if len(value) != 1:
            raise _fail(where, "expected value: the map form of execution_strategy has exactly one key")
        ((name, unit),) = value
        if unit is not None:
            raise _fail(where, f"invalid type: {_kind(unit)}, expected unit")
        value = name
    if type(value) is not str:
        raise _fail(where, f"invalid type: {_kind(value)}, expected value")
    if value not in variants:
        raise _fail(where, f"unknown variant `{value}`, expected `Interpretation` or `JIT`")
    return value


def _struct(name: str, fields: list[tuple[str, Decoder]]) -> Decoder:
    """A ``#[derive(Deserialize)]`` struct: a map (unknown keys ignored) or a sequence in field order."""
    decoders = dict(fields)

    def decode(value: Any, where: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if type(value) is list:
            for index, (field, decoder) in enumerate(fields):
                if index >= len(value):
                    raise _fail(
                        where, f"invalid length {len(value)}, expected struct {name} with {len(fields)} elements"
                    )
                found[field] = decoder(value[index], f"{where}[{index}]")
            if len(value) > len(fields):
                raise _fail(where, "trailing characters")
            return found
        if not isinstance(value, _Object):
            raise _fail(where, f"invalid type: {_kind(value)}, expected struct {name}")
        for key, item in value:
            known = decoders.get(key)
            if known is None:
                continue  # serde ignores unknown keys, at every level
            if key in found:
                raise _fail(where, f"duplicate field `{key}`")
            found[key] = known(item, f"{where}.{key}")
        for field, decoder in fields:
            if field not in found:
                if not isinstance(decoder, _Option):
                    raise _fail(where, f"missing field `{field}`")
                found[field] = None
        return {field: found[field] for field, _ in fields}

    return decode


_U8, _U32 = _unsigned(8), _unsigned(32)
_FILE_RIGHTS = _struct("FileRights", [("file_name", _string), ("rights", _U32)])
_IDENTITY = _struct("Identity", [("certificate", _string), ("id", _U32), ("file_rights", _vec(_FILE_RIGHTS))])
_PROGRAM = _struct("Program", [("program_file_name", _string), ("id", _U32), ("file_rights", _vec(_FILE_RIGHTS))])
_FILE_HASH = _struct("FileHash", [("file_path", _string), ("hash", _string)])
_TIMEPOINT = _struct("Timepoint", [("year", _U32), ("month", _U8), ("day", _U8), ("hour", _U8), ("minute", _U8)])
POLICY_FIELDS: list[tuple[str, Decoder]] = [
    ("identities", _vec(_IDENTITY)),
    ("programs", _vec(_PROGRAM)),
    ("file_hashes", _vec(_FILE_HASH)),
    ("veracruz_server_url", _string),
    ("enclave_cert_expiry", _TIMEPOINT),
    ("ciphersuite", _string),
    ("runtime_manager_hash_linux", _option(_string)),
    ("runtime_manager_hash_nitro", _option(_string)),
    ("runtime_manager_hash_icecap", _option(_string)),
    ("proxy_attestation_server_url", _string),
    ("proxy_service_cert", _string),
    ("debug", _boolean),
    ("execution_strategy", _execution_strategy),
    ("enable_clock", _boolean),
    ("max_memory_mib", _U32),
]
_POLICY = _struct("Policy", POLICY_FIELDS)


def mbedtls_suite(name: str) -> str | None:
    """The mbedTLS TLS 1.3 suite a policy's ``ciphersuite`` names ('_' read as '-', case-sensitive), or None."""
    canonical = name.replace("_", "-")
    return canonical if canonical in TLS13_SUITES else None


def openssl_suite(name: str) -> str:
    """The OpenSSL name of a policy's TLS 1.3 ``ciphersuite``; ValueError when it names none."""
    canonical = mbedtls_suite(name)
    if canonical is None:
        raise ValueError(f"{name!r} is not a TLS 1.3 ciphersuite; expected one of {', '.join(TLS13_SUITES)}")
    return TLS13_SUITES[canonical]


def load_json(text: str | bytes) -> Any:
    """serde_json's reading of a policy file: UTF-8, no BOM, no NaN; numbers and objects kept raw."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError("stream did not contain valid UTF-8: the policy file must be UTF-8 text") from None
    if text.startswith("\ufeff"):
        raise PolicyError(
            "expected value at line 1 column 1: the policy starts with a byte order mark (BOM); remove it"
        )
    try:
        return json.loads(
            text, object_pairs_hook=_Object, parse_float=_Float, parse_int=_parse_int, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as exc:
        raise PolicyError(f"the policy is not JSON: {exc}") from None
    except RecursionError:
        raise PolicyError("the policy nests JSON values too deeply for this parser") from None


def read_policy(text: str | bytes) -> dict[str, Any]:
    """``Policy::from_json``: serde's typed reading, then ``assert_valid``; returns the normalised policy.

    Raises :class:`PolicyError` for every input Veracruz v1.3's parser refuses,
    and (stricter, see the parity table) for ciphersuites that are not TLS 1.3.
    """
    document: dict[str, Any] = _POLICY(load_json(text), "$")
    seen: set[int] = set()
    for index, identity in enumerate(document["identities"]):
        where = f"$.identities[{index}]"
        if not identity["certificate"].endswith(END_CERTIFICATE):
            raise PolicyError(
                f"{where}.certificate must end exactly with {END_CERTIFICATE} (no trailing newline or space)",
                path=f"{where}.certificate",
            )
        if identity["id"] in seen:
            raise PolicyError(f"{where}.id: identity id {identity['id']} is used twice", path=f"{where}.id")
        seen.add(identity["id"])
    suite = document["ciphersuite"]
    if mbedtls_suite(suite) is None:
        raise PolicyError(
            f"$.ciphersuite {suite!r} is not a TLS 1.3 ciphersuite: Veracruz's client and runtime speak only TLS 1.3; "
            f"use one of {', '.join(n.replace('-', '_') for n in TLS13_SUITES)}",
            path="$.ciphersuite",
        )
    return document

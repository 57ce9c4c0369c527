"""Enclave paths as URL path segments: ``/function/NAME/program/<segment>`` carries a path in base64.

Standard base64, as the original i-PoC's scripts send it; URL-safe base64, padded or not, is accepted too.
The registry decodes segments and the CLI encodes them, both with this module.
"""

from __future__ import annotations

import base64
import binascii

from ipoc.errors import ValidationError


def encode_path(path: str) -> str:
    """The URL segment for an enclave path: standard base64, as the original i-PoC."""
    return base64.b64encode(path.encode()).decode()


def decode_path(segment: str) -> str:
    """Accept standard or URL-safe base64, padded or not."""
    text = segment.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            f"{segment!r} is not the base64 of an enclave path (e.g. {encode_path('/program/detector.wasm')})"
        ) from None

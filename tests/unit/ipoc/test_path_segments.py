"""Enclave paths in URL segments, checked against coreutils' base64 (what the original i-PoC's scripts ran)."""

from __future__ import annotations

import subprocess

import pytest

from ipoc.errors import ValidationError
from ipoc.path_segments import decode_path, encode_path

PATHS = ["/program/detector.wasm", "/program_data/yolov3.weights", "/program_data/coco.names", "/s3_app_input/ä?.y4m"]


def coreutils_base64(text: str) -> str:
    return subprocess.run(
        ["base64", "-w0"], input=text.encode(), capture_output=True, check=True, timeout=10
    ).stdout.decode()


@pytest.mark.parametrize("path", PATHS)
def test_segments_are_what_the_original_scripts_send(path):
    assert encode_path(path) == coreutils_base64(path)
    assert decode_path(coreutils_base64(path)) == path


@pytest.mark.parametrize("path", PATHS)
def test_url_safe_and_unpadded_segments_are_accepted(path):
    url_safe = coreutils_base64(path).replace("+", "-").replace("/", "_").rstrip("=")
    assert decode_path(url_safe) == path


@pytest.mark.parametrize("segment", ["not base64!", "////", "gA"])  # gA decodes to b"\x80": not UTF-8
def test_anything_else_is_refused_with_an_example(segment):
    with pytest.raises(
        ValidationError, match=r"is not the base64 of an enclave path \(e.g. L3Byb2dyYW0vZGV0ZWN0b3Iud2FzbQ==\)"
    ):
        decode_path(segment)

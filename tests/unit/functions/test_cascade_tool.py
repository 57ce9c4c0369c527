"""The cascade converter on OpenCV's own cascades."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "functions" / "vod"))

# a script of functions/vod/ (put on sys.path above), not a package mypy can find

import cascade_tool  # type: ignore[import-not-found]  # noqa: E402


def test_frontal_face_converts_with_its_stages_and_features():
    import xml.etree.ElementTree as ET

    path = cascade_tool.opencv_cascade_path("frontalface_default")
    model = cascade_tool.convert(path.read_text())
    magic, version, width, height, stages, features = struct.unpack_from("<8sIIIII", model)
    cascade = ET.parse(path).getroot().find("cascade")
    assert (magic, version, width, height) == (b"IPOCHAAR", 2, 24, 24)
    assert stages == len(cascade.find("stages")) == 25
    assert features == len(cascade.find("features"))


@pytest.mark.parametrize(
    "name", ["frontalcatface", "frontalcatface_extended", "fullbody", "upperbody", "smile", "profileface"]
)
def test_stump_cascades_convert_tilted_features_included(name):
    assert cascade_tool.convert(cascade_tool.opencv_cascade_path(name).read_text()).startswith(b"IPOCHAAR")


def test_tree_cascades_and_bad_input_are_refused():
    with pytest.raises(cascade_tool.CascadeError, match="maxDepth 1"):
        cascade_tool.convert(cascade_tool.opencv_cascade_path("lefteye_2splits").read_text())
    with pytest.raises(cascade_tool.CascadeError, match="no haarcascade_nothing"):
        cascade_tool.opencv_cascade_path("nothing")
    with pytest.raises(cascade_tool.CascadeError, match="not an OpenCV cascade"):
        cascade_tool.convert("<opencv_storage/>")

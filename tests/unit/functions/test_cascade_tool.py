"""The cascade converter on OpenCV's own cascades."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "functions" / "vod"))

import cascade_tool  # noqa: E402


def test_frontal_face_converts_with_its_stages_and_features():
    import xml.etree.ElementTree as ET

    path = cascade_tool.opencv_cascade_path("frontalface_default")
    model = cascade_tool.convert(path.read_text())
    magic, version, width, height, stages, features = struct.unpack_from("<8sIIIII", model)
    cascade = ET.parse(path).getroot().find("cascade")
    assert (magic, version, width, height) == (b"IPOCHAAR", 1, 24, 24)
    assert stages == len(cascade.find("stages")) == 25
    assert features == len(cascade.find("features"))


def test_cat_faces_convert_and_tilted_cascades_are_refused():
    assert cascade_tool.convert(cascade_tool.opencv_cascade_path("frontalcatface").read_text()).startswith(b"IPOCHAAR")
    with pytest.raises(cascade_tool.CascadeError, match="tilted"):
        cascade_tool.convert(cascade_tool.opencv_cascade_path("fullbody").read_text())
    with pytest.raises(cascade_tool.CascadeError, match="no haarcascade_nothing"):
        cascade_tool.opencv_cascade_path("nothing")
    with pytest.raises(cascade_tool.CascadeError, match="not an OpenCV cascade"):
        cascade_tool.convert("<opencv_storage/>")

"""Convert an OpenCV Haar cascade (XML, as shipped in opencv-python-headless) into the detector's model file.

    python functions/vod/cascade_tool.py haarcascade_frontalface_default.xml cascade.bin
    python functions/vod/cascade_tool.py --name frontalface_default cascade.bin   # from cv2.data.haarcascades

Format (little-endian): b"IPOCHAAR", u32 version 2, u32 window width, u32 window height,
u32 stage count, u32 feature count; per stage: u32 stump count, f32 threshold, then per
stump u32 feature index, f32 threshold, f32 left leaf, f32 right leaf; per feature: u32
rect count, u32 tilted (0 or 1: rectangles rotated by 45 degrees), then per rect u32 x,
u32 y, u32 w, u32 h, f32 weight.

Only stump cascades (maxDepth 1, OpenCV's new format) are supported.
"""

from __future__ import annotations

import argparse
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

MAGIC = b"IPOCHAAR"


class CascadeError(ValueError):
    pass


def _numbers(text: str | None) -> list[str]:
    return (text or "").split()


def convert(xml_text: str) -> bytes:
    root = ET.fromstring(xml_text)
    cascade = root.find("cascade")
    if cascade is None:
        raise CascadeError("not an OpenCV cascade (no <cascade> element; old-format cascades are not supported)")
    if (cascade.findtext("featureType") or "").strip() != "HAAR" or (
        cascade.findtext("stageType") or ""
    ).strip() != "BOOST":
        raise CascadeError("only BOOST cascades of HAAR features are supported")
    width, height = int(cascade.findtext("width")), int(cascade.findtext("height"))
    stages = cascade.find("stages")
    features = cascade.find("features")
    out = bytearray(MAGIC + struct.pack("<IIIII", 2, width, height, len(stages), len(features)))
    for stage in stages:
        weaks = stage.find("weakClassifiers")
        out += struct.pack("<If", len(weaks), float(stage.findtext("stageThreshold")))
        for weak in weaks:
            nodes = _numbers(weak.findtext("internalNodes"))
            leaves = _numbers(weak.findtext("leafValues"))
            if len(nodes) != 4 or len(leaves) != 2:
                raise CascadeError("only stump classifiers (maxDepth 1) are supported")
            out += struct.pack("<Ifff", int(nodes[2]), float(nodes[3]), float(leaves[0]), float(leaves[1]))
    for feature in features:
        tilted = (feature.findtext("tilted") or "0").strip() == "1"
        rects = [_numbers(r.text) for r in feature.find("rects")]
        if not 1 <= len(rects) <= 3:
            raise CascadeError("a feature must have 1 to 3 rectangles")
        out += struct.pack("<II", len(rects), int(tilted))
        for x, y, w, h, weight in rects:
            out += struct.pack("<IIIIf", int(x), int(y), int(w), int(h), float(weight))
    return bytes(out)


def opencv_cascade_path(name: str) -> Path:
    import cv2

    path = Path(cv2.data.haarcascades) / f"haarcascade_{name}.xml"
    if not path.exists():
        raise CascadeError(f"opencv-python-headless ships no haarcascade_{name}.xml")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("xml", nargs="?", type=Path, help="an OpenCV cascade XML file")
    source.add_argument("--name", help="a cascade shipped with OpenCV, e.g. frontalface_default, frontalcatface")
    parser.add_argument("output", type=Path, help="the model file to write")
    args = parser.parse_args(argv)
    try:
        xml_path = opencv_cascade_path(args.name) if args.name else args.xml
        args.output.write_bytes(convert(xml_path.read_text()))
    except (CascadeError, OSError) as exc:
        print(f"cascade_tool: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The VOD build, sample media and OpenCV reference, from their home that benchmarks share (bench may not import
tests)."""

from bench.harness.vod import (
    DIRECTORIES,
    REFERENCE_DETECTIONS,
    ROOT,
    VOD,
    agreement,
    astronaut_frame,
    carphone,
    carphone_frames,
    detections,
    encrypted,
    ensure_built,
    iou,
    layout,
    opencv_boxes,
    photo_frame,
    preopens,
    regression_cases,
)

__all__ = [
    "ROOT",
    "VOD",
    "ensure_built",
    "carphone",
    "carphone_frames",
    "astronaut_frame",
    "photo_frame",
    "encrypted",
    "DIRECTORIES",
    "layout",
    "preopens",
    "opencv_boxes",
    "REFERENCE_DETECTIONS",
    "regression_cases",
    "iou",
    "agreement",
    "detections",
]

"""The VOD build, sample media and OpenCV reference, from their home that benchmarks share (bench may not import tests)."""

from bench.harness.vod import (
    ROOT,
    VOD,
    ensure_built,
    carphone,
    carphone_frames,
    astronaut_frame,
    photo_frame,
    encrypted,
    DIRECTORIES,
    layout,
    preopens,
    opencv_boxes,
    REFERENCE_DETECTIONS,
    regression_cases,
    iou,
    agreement,
    detections,
)

__all__ = ['ROOT', 'VOD', 'ensure_built', 'carphone', 'carphone_frames', 'astronaut_frame', 'photo_frame', 'encrypted', 'DIRECTORIES', 'layout', 'preopens', 'opencv_boxes', 'REFERENCE_DETECTIONS', 'regression_cases', 'iou', 'agreement', 'detections']

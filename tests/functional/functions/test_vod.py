"""The VOD detector as a WebAssembly function in a real runtime, checked against OpenCV.

The program, the model and the inputs go in through VeracruzClient as the policy's
identities would send them; the detector runs under wasmtime in the runtime; its
detections are compared with cv2.CascadeClassifier.detectMultiScale on the same frames.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ipoc import errors
from ipoc.client import VeracruzClient
from ipoc.policy import compose_vaas_policy
from tests.support import vod

USER_RIGHTS = [
    {"file_name": "/user_input/", "rights": 534084},
    {"file_name": "/output/", "rights": 24582},
    {"file_name": "stdout", "rights": 24582},
    {"file_name": "stderr", "rights": 24582},
    {"file_name": "/program/", "rights": 536879104},
]
STREAMER_RIGHTS = [{"file_name": "/s3_app_input/", "rights": 534084}]


@pytest.fixture(scope="module")
def build():
    return vod.ensure_built()


@pytest.fixture
def instance(build, start_runtime, ids):
    """A runtime with the VOD policy, the program and the model loaded by the program-load identity."""
    function = json.loads((build / "function.json").read_text())
    user_policy = {
        "function": "vod",
        "instanceid": "t",
        "identities": [
            {"certificate": ids.streamer.certificate, "file_rights": STREAMER_RIGHTS},
            {"certificate": ids.user.certificate, "file_rights": USER_RIGHTS},
        ],
    }
    runtime = start_runtime(compose_vaas_policy(function, user_policy, ids.loader.certificate), time_limit=120)
    with VeracruzClient(runtime.policy, ids.loader.certificate, ids.loader.private_key) as loader:
        loader.write_file("/program/detector.wasm", (build / "detector.wasm").read_bytes())
        loader.write_file("/program_data/cascade.bin", (build / "cascade.bin").read_bytes())
    return runtime


def run(instance, ids, video: bytes, key: bytes, iv: bytes) -> tuple[int, VeracruzClient]:
    with VeracruzClient(instance.policy, ids.streamer.certificate, ids.streamer.private_key) as streamer:
        streamer.write_file("/s3_app_input/in_enc.y4m", video)
    user = VeracruzClient(instance.policy, ids.user.certificate, ids.user.private_key)
    user.connect()
    user.write_file("/user_input/key", key)
    user.write_file("/user_input/iv", iv)
    return user.execute("/program/detector.wasm"), user


@pytest.mark.parametrize("sample", ["carphone", "astronaut"])
def test_detections_agree_with_opencv(instance, ids, sample):
    width, height, frames = vod.carphone_frames(6) if sample == "carphone" else vod.astronaut_frame()
    key, iv = os.urandom(16), os.urandom(16)
    code, user = run(instance, ids, vod.encrypted(width, height, frames, key, iv), key, iv)
    try:
        assert code == 0, user.read_file("stderr").decode()
        ours = vod.detections(user.read_file("/output/detections.json"))
        stdout = user.read_file("stdout").decode()
        png = user.read_file("/output/prediction.0.png")
    finally:
        user.close()
    assert "Decrypting video..." in stdout and "Image 0 ===" in stdout and "Detection probabilities:" in stdout
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    result = vod.agreement(ours, vod.opencv_boxes(frames))
    assert result["opencv_boxes"] >= len(frames)  # a face in every frame
    assert result["opencv_matched"] >= 0.95 and result["ours_matched"] >= 0.95, result


def test_a_wrong_key_fails_with_a_clear_message(instance, ids):
    width, height, frames = vod.carphone_frames(1)
    key, iv = os.urandom(16), os.urandom(16)
    code, user = run(instance, ids, vod.encrypted(width, height, frames, key, iv), os.urandom(16), iv)
    try:
        assert code == 2
        stderr = user.read_file("stderr").decode()
        assert stderr.strip() == (
            "detector: the decrypted video is not a 4:2:0 YUV4MPEG2 stream "
            "(wrong key or IV, or not an encrypted .y4m file)"
        )
        with pytest.raises(errors.FileNotFound):
            user.read_file("/output/detections.json")
    finally:
        user.close()


def test_the_model_and_program_are_hash_checked(instance, ids, build):
    with VeracruzClient(instance.policy, ids.loader.certificate, ids.loader.private_key) as loader:
        with pytest.raises(errors.FileHashMismatch):
            loader.write_file("/program_data/cascade.bin", (build / "cascade.bin").read_bytes()[:-1])


def run_under_wasmtime(wasm: bytes, work) -> bytes:
    """The detector straight under our wasmtime executor, with vod.layout()'s pre-opened
    directories (the runtime pins the frontal-face model by hash); returns detections.json."""
    from runtime.executor import Executor, Streams

    code = Executor(max_memory_mib=512, enable_clock=False, time_limit=120).run(
        wasm, vod.preopens(work), Streams(stderr=work / "stderr")
    )
    assert code == 0, (work / "stderr").read_text()
    return (work / "output/detections.json").read_bytes()


@pytest.mark.parametrize(("cascade", "photo"), [("frontalcatface", "chelsea"), ("smile", "astronaut")])
def test_other_cascades_agree_with_opencv_under_wasmtime(build, tmp_path, cascade, photo):
    """Cat faces, and a cascade of tilted (45-degree) features."""
    import sys

    sys.path.insert(0, str(vod.ROOT / "functions" / "vod"))
    # a script of functions/vod/ (put on sys.path above), not a package mypy can find
    import cascade_tool  # type: ignore[import-not-found]

    width, height, frames = vod.photo_frame(photo)
    vod.layout(
        tmp_path / "work",
        width,
        height,
        frames,
        model=cascade_tool.convert(cascade_tool.opencv_cascade_path(cascade).read_text()),
    )
    ours = vod.detections(run_under_wasmtime((build / "detector.wasm").read_bytes(), tmp_path / "work"))
    result = vod.agreement(ours, vod.opencv_boxes(frames, cascade))
    assert result["opencv_boxes"] >= 1
    assert result["opencv_matched"] >= 0.95 and result["ours_matched"] >= 0.95, result


@pytest.fixture(scope="module")
def regression_cases() -> dict[str, dict]:
    return vod.regression_cases()


@pytest.mark.parametrize(
    "case",
    [
        "carphone_12_frames_counter_wraps",
        "carphone_1280x720",
        "astronaut_smile_every_candidate",
        "chelsea_cat_face_min_size",
    ],
)
def test_detections_are_byte_identical_to_the_first_builds(build, tmp_path, regression_cases, case):
    """Speed-ups must not move a box: detections.json as the detector wrote it before them
    (tests/data/vod/reference_detections.json, from the wasm build of commit 18e08c3), byte for
    byte, for the wasm build and the native build of the same source. The video is encrypted
    here with cryptography's AES-CTR, so the detector's own AES is checked on the way."""
    spec = dict(regression_cases[case])
    (width, height), frames = spec.pop("size"), spec.pop("frames")
    spec["params"] = spec.get("params", "") + "write_images=0\n"
    vod.layout(tmp_path / "work", width, height, frames, **spec)
    expected = json.loads(vod.REFERENCE_DETECTIONS.read_text())["cases"][case].encode()
    assert run_under_wasmtime((build / "detector.wasm").read_bytes(), tmp_path / "work") == expected
    (tmp_path / "work/output/detections.json").unlink()
    subprocess.run([str(build / "detector")], cwd=tmp_path / "work", check=True, capture_output=True, timeout=120)
    assert (tmp_path / "work/output/detections.json").read_bytes() == expected

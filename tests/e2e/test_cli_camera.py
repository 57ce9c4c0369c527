"""`ipoc camera encrypt` on a real video: the output decrypts (with cryptography) to the video's frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from client.camera.video import decode_frames, decrypt
from client.camera.y4m import read_frames
from tests.support import processes, vod


def test_encrypt_produces_ctr_encrypted_y4m_of_the_video(tmp_path: Path):
    out = tmp_path / "in_enc.y4m"
    result = processes.run(["camera", "encrypt", str(vod.carphone()), "--out", str(out), "--max-frames", "3"])
    assert result.returncode == 0, result.stderr
    assert "Encrypted 3 frames of 176x144" in result.stderr
    key, iv = (tmp_path / "in_enc.y4m.key").read_bytes(), (tmp_path / "in_enc.y4m.iv").read_bytes()
    assert len(key) == len(iv) == 16 and (tmp_path / "in_enc.y4m.key").stat().st_mode & 0o777 == 0o600
    ciphertext = out.read_bytes()
    assert not ciphertext.startswith(b"YUV4MPEG2")
    import io

    frames = list(read_frames(io.BytesIO(decrypt(ciphertext, key, iv))))
    _, _, expected = decode_frames(vod.carphone(), max_frames=3)
    for ours, theirs in zip(frames, expected, strict=True):
        assert np.array_equal(ours.y, theirs.y)
    # the same key and IV are reused when given: the output is identical
    again = tmp_path / "again.y4m"
    assert (
        processes.run(
            [
                "camera",
                "encrypt",
                str(vod.carphone()),
                "--out",
                str(again),
                "--max-frames",
                "3",
                "--key",
                str(tmp_path / "in_enc.y4m.key"),
                "--iv",
                str(tmp_path / "in_enc.y4m.iv"),
            ]
        ).returncode
        == 0
    )
    assert again.read_bytes() == ciphertext


def test_encrypt_and_upload_errors(tmp_path: Path):
    bad = tmp_path / "not-a-video.mp4"
    bad.write_bytes(b"hello")
    result = processes.run(["camera", "encrypt", str(bad), "--out", str(tmp_path / "x.y4m")])
    assert result.returncode == 1 and "cannot decode" in result.stderr
    upload = processes.run(["camera", "upload", str(bad), "http://nope"])
    assert upload.returncode == 2 and "expected s3://BUCKET/KEY" in upload.stderr

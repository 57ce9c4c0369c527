"""Rights bits, presets, rendering and the deepest-ancestor rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipoc import rights
from ipoc.errors import RightsError


def test_bits_are_the_seeds_table():
    assert (
        rights.Rights.FD_DATASYNC == 1 and rights.Rights.SOCK_SHUTDOWN == 2**28 and rights.Rights.FILE_EXECUTE == 2**29
    )
    assert [flag.value for flag in rights.Rights] == [2**i for i in range(30)]
    assert rights.Rights.PATH_OPEN == 8192 and rights.Rights.PATH_FILESTAT_SET_SIZE == 524288


def test_presets_match_veracruz_shared_mk():
    assert (rights.READ, rights.WRITE, rights.READ_WRITE, rights.OPEN_EXECUTE, rights.WRITE_EXECUTE) == (
        24582,
        534084,
        550470,
        536879104,
        537404996,
    )
    assert rights.names(24582) == ["FD_READ", "FD_SEEK", "PATH_OPEN", "FD_READDIR"]
    assert (
        rights.READ_WRITE == rights.READ | rights.WRITE
        and rights.WRITE_EXECUTE == rights.WRITE | rights.Rights.FILE_EXECUTE
    )
    # the seed's worked example: 533572 has no FD_READ (the README said it did)
    assert "FD_READ" not in rights.names(533572)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "NONE"),
        (24582, "READ"),
        (534084, "WRITE"),
        (536879104, "OPEN_EXECUTE"),
        (24582 | 64, "READ|FD_WRITE"),
        (2, "FD_READ"),
    ],
)
def test_render(value, text):
    assert rights.render(value) == text


def test_parse_accepts_numbers_presets_names_and_aliases():
    assert rights.parse("READ|FILE_EXECUTE") == rights.READ | rights.Rights.FILE_EXECUTE
    assert rights.parse("read, fd_execute") == rights.READ | rights.Rights.FILE_EXECUTE
    assert rights.parse("24582 + 64") == 24582 | 64
    assert rights.parse(534084) == rights.WRITE
    assert rights.parse("NONE") == 0


@pytest.mark.parametrize("bad", ["", "READ|BOGUS", 2**30, -1, "0x40000000"])
def test_parse_refuses_what_is_not_rights(bad):
    with pytest.raises(RightsError):
        rights.parse(bad)


@given(st.integers(0, 2**30 - 1))
def test_render_parses_back(value):
    assert rights.parse(rights.render(value)) == value
    assert sum(rights.Rights[name] for name in rights.names(value)) == value


def test_normalise_path():
    assert rights.normalise_path("/program/") == "/program"
    assert rights.normalise_path("program//x.wasm") == "/program/x.wasm"
    assert rights.normalise_path("stdout") == "stdout"
    assert rights.normalise_path("/") == "/"
    with pytest.raises(RightsError):
        rights.normalise_path("/a/../b")


def test_covering_grant_is_the_deepest_ancestor_by_whole_components():
    grants = rights.table(
        [
            {"file_name": "/", "rights": 1},
            {"file_name": "/output/", "rights": 2},
            {"file_name": "/output/private/", "rights": 4},
            {"file_name": "stdout", "rights": 8},
        ]
    )
    assert rights.covering_grant(grants, "/output/private/x") == ("/output/private", 4)
    assert rights.covering_grant(grants, "/output/x") == ("/output", 2)
    assert rights.covering_grant(grants, "/outputs/x") == ("/", 1)  # no prefix matching inside a component
    assert rights.covering_grant(grants, "stdout") == ("stdout", 8)
    assert rights.covering_grant(grants, "stderr") is None
    assert rights.covering_grant(rights.table([{"file_name": "/in/", "rights": 1}]), "/other") is None

"""lambdas/shared/config.py: one table of settings, read from and written to the environment the same way."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from lambdas.shared import config
from lambdas.shared.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_every_setting_names_its_own_variable() -> None:
    names = Settings.names()
    assert list(names) == [f.name for f in fields(Settings)]
    assert len(set(names.values())) == len(names)
    assert all(name.startswith("IPOC_") for name in names.values())


def test_the_environment_written_reads_back_as_the_same_settings() -> None:
    changed = Settings(
        functions_table="t", admin_principals=("arn:a", "arn:b"), port_min=4000, proxy_url="", warm_pool=0
    )
    environment = changed.to_environment()
    assert set(environment) == set(Settings.names().values())
    assert environment["IPOC_ADMIN_PRINCIPALS"] == "arn:a,arn:b" and environment["IPOC_PORT_MIN"] == "4000"
    assert Settings.from_environment(environment) == changed
    assert Settings.from_environment({}) == Settings()


def test_values_are_read_as_a_deployment_writes_them() -> None:
    read = Settings.from_environment(
        {
            "IPOC_ADMIN_PRINCIPALS": " arn:a , ,arn:b ",
            "IPOC_PORT_MAX": "",
            "IPOC_STATE_DIR": "",
            "IPOC_PROXY_URL": "",
            "UNRELATED": "x",
        }
    )
    assert read.admin_principals == ("arn:a", "arn:b")
    assert read.port_max == Settings().port_max  # an empty number keeps its default
    assert read.proxy_url == ""  # an empty text is a value
    with pytest.raises(RuntimeError, match="IPOC_MAX_TTL must be an integer, got 'soon'"):
        Settings.from_environment({"IPOC_MAX_TTL": "soon"})


def test_a_process_reads_its_environment_once_unless_given_its_settings(monkeypatch) -> None:
    monkeypatch.setattr(config, "_current", None)
    monkeypatch.setenv("IPOC_SLOTS_TABLE", "from-env")
    assert config.settings().slots_table == "from-env"
    monkeypatch.setenv("IPOC_SLOTS_TABLE", "changed-later")
    assert config.settings().slots_table == "from-env"  # a warm Lambda's environment does not change
    given = Settings(slots_table="given")
    with config.using(given):
        assert config.settings() is given
    assert config.settings().slots_table == "from-env"


def test_no_code_outside_the_table_reads_a_setting_from_the_environment() -> None:
    """Every IPOC_ setting the table holds is read only through it (lambdas/ and local/ name none elsewhere)."""
    table = set(Settings.names().values())
    offenders = []
    for path in [*ROOT.glob("lambdas/**/*.py"), *ROOT.glob("local/**/*.py")]:
        if path == ROOT / "lambdas/shared/config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) or isinstance(node, ast.Call):
                text = ast.unparse(node)
                if "environ" in text or "getenv" in text:
                    offenders += [f"{path.relative_to(ROOT)}: {text}" for name in table if f"'{name}'" in text]
    assert offenders == []

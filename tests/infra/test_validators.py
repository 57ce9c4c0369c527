"""Third-party validators on what we deploy: cfn-lint on every synthesized template, asl-validator on the
state machine, checkov on the templates and the rendered chart.

Each tool is also shown a broken input once, so a tool that silently checks
nothing fails here too. Accepted findings live beside their reasons:
``.cfnlintrc.yaml`` (cfn-lint) and ``infra/checkov-accepted.yaml`` (checkov).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.test_chart import render

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "instance_lifecycle.asl.json"
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
ACCEPTED = ROOT / "infra" / "checkov-accepted.yaml"


def cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    """The cfn-lint CLI from our venv, run from the repository root so .cfnlintrc.yaml applies."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def template_files(synth) -> list[Path]:
    directory = Path(synth.assembly.directory)
    return [directory / f"{name}.template.json" for name in sorted(synth.stacks)]


def test_cfn_lint_finds_nothing_in_any_template(synth) -> None:
    files = template_files(synth)
    assert len(files) == 3
    result = cfn_lint(*files)
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout[-4000:] + result.stderr[-2000:]


def test_cfn_lint_does_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps(
            {
                "Resources": {
                    "Fn": {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Runtime": "python2.7",
                            "Handler": "h",
                            "Role": "arn:aws:iam::111122223333:role/r",
                            "Code": {"ZipFile": "x"},
                        },
                    }
                }
            }
        )
    )
    result = cfn_lint(broken)
    assert result.returncode != 0 and ":E" in result.stdout, result.stdout


def asl_validator(path: Path) -> subprocess.CompletedProcess[str]:
    assert ASL_VALIDATOR.exists(), "run `make bootstrap` (npm ci installs asl-validator)"
    return subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=120)


def test_asl_validator_accepts_the_state_machine_as_deployed(platform_json: dict, tmp_path: Path) -> None:
    """The ASL file with CloudFormation's substitution done, as Step Functions will receive it."""
    [machine] = [r for r in platform_json["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = machine["Properties"]["DefinitionString"]
    for name in machine["Properties"]["DefinitionSubstitutions"]:
        definition = definition.replace("${" + name + "}", "arn:aws:lambda:eu-west-1:111122223333:function:ipoc-tasks")
    deployed = tmp_path / "deployed.asl.json"
    deployed.write_text(definition)
    for path in (ASL, deployed):
        result = asl_validator(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_does_check(tmp_path: Path) -> None:
    definition = json.loads(ASL.read_text())
    first = definition["StartAt"]
    definition["States"][first]["Next"] = "NoSuchState"
    definition["States"][first].pop("End", None)
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    assert asl_validator(broken).returncode != 0


def checkov(directory: Path, framework: str) -> list[tuple[str, str, str]]:
    """(framework, check id, resource) of every failed check; nothing is fetched from the network."""
    assert CHECKOV.exists(), "run `make bootstrap` (installs checkov into .venv-tools)"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            framework,
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    report = json.loads(result.stdout)
    assert report["check_type"] == framework, result.stderr[-2000:]
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 50, report["summary"]
    return [(framework, f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]


@pytest.fixture(scope="module")
def checkov_findings(synth, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    templates, chart = tmp_path_factory.mktemp("templates"), tmp_path_factory.mktemp("chart")
    for path in template_files(synth):
        shutil.copy(path, templates / path.name)
    (chart / "ipoc.yaml").write_text(render().stdout)
    return checkov(templates, "cloudformation") + checkov(chart, "kubernetes")


@pytest.mark.slow
def test_checkov_findings_are_exactly_the_accepted_ones(checkov_findings: list[tuple[str, str, str]]) -> None:
    accepted = yaml.safe_load(ACCEPTED.read_text())

    def covered(framework: str, check: str, resource: str) -> bool:
        entry = accepted.get(framework, {}).get(check)
        return bool(entry) and any(fnmatch.fnmatchcase(resource, p) for p in entry["resources"])

    unexplained = sorted(f"{c} {r}" for f, c, r in checkov_findings if not covered(f, c, r))
    assert unexplained == [], f"fix these or add them with a reason to {ACCEPTED.name}"
    stale = sorted(
        f"{check} {pattern}"
        for framework, checks in accepted.items()
        for check, entry in checks.items()
        for pattern in entry["resources"]
        if not any(f == framework and c == check and fnmatch.fnmatchcase(r, pattern) for f, c, r in checkov_findings)
    )
    assert stale == [], f"no longer found: remove from {ACCEPTED.name}"
    for checks in accepted.values():
        for check, entry in checks.items():
            assert len(entry["reason"]) >= 60, check

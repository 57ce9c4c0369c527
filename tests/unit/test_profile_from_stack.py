"""`ipoc profile from-stack` against moto's CloudFormation (a stack with the platform stack's outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from client import profiles
from client.cli import ipoc
from ipoc import stack_outputs

TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        stack_outputs.OUTPUT_API_URL: {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/"},
        stack_outputs.OUTPUT_REGION: {"Value": "eu-west-1"},
        stack_outputs.OUTPUT_INPUTS_BUCKET: {"Value": "ipoc-inputs-1234"},
    },
}


@pytest.fixture
def aws(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("IPOC_CONFIG", str(tmp_path / "config.toml"))
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("cloudformation", region_name="eu-west-1")


def test_writes_an_aws_profile_from_the_outputs(aws, tmp_path: Path) -> None:
    aws.create_stack(StackName="Ipoc", TemplateBody=json.dumps(TEMPLATE))
    result = CliRunner().invoke(
        ipoc, ["profile", "from-stack", "Ipoc", "--region", "eu-west-1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    written = profiles.load("aws")
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
    assert written.kind == "aws" and written.region == "eu-west-1"
    assert written.endpoints == {"ccfaas": url, "vaas": url, "s3stream": url}
    assert written.inputs_bucket == "ipoc-inputs-1234"
    listed = CliRunner().invoke(ipoc, ["profile", "list", "--json"], catch_exceptions=False)
    assert json.loads(listed.output) == [{"name": "aws", "type": "aws", "region": "eu-west-1", "ccfaas": url}]


def test_an_unknown_stack_is_a_clear_error(aws) -> None:
    result = CliRunner().invoke(ipoc, ["profile", "from-stack", "Nope", "--region", "eu-west-1"])
    assert result.exit_code == 1
    assert "cannot read stack 'Nope'" in result.output


def test_a_stack_without_the_outputs_is_refused(aws) -> None:
    aws.create_stack(StackName="Other", TemplateBody=json.dumps({"Resources": TEMPLATE["Resources"]}))
    result = CliRunner().invoke(ipoc, ["profile", "from-stack", "Other", "--region", "eu-west-1"])
    assert result.exit_code == 1
    assert "no output ApiUrl, Region" in result.output

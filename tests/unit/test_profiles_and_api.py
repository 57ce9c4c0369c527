"""CLI profiles and the API client's SigV4 signing (offline: requests are prepared, never sent)."""

from __future__ import annotations

import requests

from client.api import Api
from client.profiles import Profile, load, load_all, save


def test_profiles_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("IPOC_CONFIG", str(tmp_path / "config.toml"))
    save(
        Profile(
            "local",
            "local",
            {"ccfaas": "http://127.0.0.1:5010", "vaas": "http://127.0.0.1:5000", "s3stream": "http://127.0.0.1:5020"},
            s3_endpoint="http://127.0.0.1:5055",
        )
    )
    save(Profile("prod", "aws", {"ccfaas": "https://abc.execute-api.eu-west-1.amazonaws.com/prod"}, region="eu-west-1"))
    profiles = load_all()
    assert set(profiles) == {"local", "prod"}
    assert load().endpoint("ccfaas") == "http://127.0.0.1:5010"
    assert load("prod").region == "eu-west-1" and load("prod").kind == "aws"


def test_aws_profile_signs_with_sigv4(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    api = Api(
        Profile("prod", "aws", {"ccfaas": "https://abc.execute-api.eu-west-1.amazonaws.com/prod"}, region="eu-west-1")
    )
    prepared = requests.Request("GET", "https://abc.execute-api.eu-west-1.amazonaws.com/prod/function").prepare()
    api._sign(prepared)
    authorization = prepared.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "X-Amz-Date" in prepared.headers

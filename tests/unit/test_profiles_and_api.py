"""CLI profiles and the API client's SigV4 signing (offline: requests are prepared, never sent)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
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


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe binary", "cannot read the profiles file"),
        (b"profiles = 5\n", "`profiles` must be tables, one [profiles.NAME] per profile"),
        (b"[profiles.local]\nccfaas = 5\n", "profile 'local' in {path}: ccfaas must be a string"),
        (b'[profiles.local]\ntype = "gcp"\n', "profile 'local' in {path}: type must be 'local' or 'aws', not 'gcp'"),
        (b'[profiles.local]\ntype = "aws"\nvaas = "https://x"\n', "profile 'local' has no ccfaas endpoint"),
    ],
)
def test_a_broken_profiles_file_is_one_line_naming_what_to_fix(tmp_path, content, expected):
    """New-user QA: each of these was "error: unexpected UnicodeDecodeError / AttributeError / ProfileError"."""
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    env = {**os.environ, "IPOC_CONFIG": str(config), "IPOC_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "client", "function", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "unexpected" not in result.stderr, result.stderr
    assert expected.format(path=config) in result.stderr, result.stderr


def test_a_profiles_path_that_is_a_directory_is_named(tmp_path):
    env = {**os.environ, "IPOC_CONFIG": str(tmp_path), "IPOC_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "client", "profile", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and f"cannot read the profiles file {tmp_path}" in result.stderr, result.stderr


def test_a_local_stacks_500_points_at_local_status():
    """A part of the local stack down (its local AWS killed, say) reaches the user as the handler's 500
    "the service failed unexpectedly"; on a local profile the CLI adds where to look. A real HTTP server on
    loopback answers as the API's error mapping does."""
    import http.server
    import json
    import threading

    from client.api import ApiError

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = json.dumps({"error": "InternalError", "message": "the service failed unexpectedly"}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for kind, hinted in (("local", True), ("aws", False)):
            api = Api(Profile("p", kind, {"ccfaas": url}))
            with pytest.raises(ApiError) as failed:
                api._sign = lambda prepared: None  # no credentials needed here
                api.call("ccfaas", "GET", "/instance")
            assert failed.value.message.startswith("the service failed unexpectedly")
            assert ("`ipoc local status`" in failed.value.message) is hinted
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

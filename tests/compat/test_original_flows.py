"""Acceptance: the original i-PoC's scripts and user app, unchanged except host and port, against `ipoc local up`.

- register-function-small.sh: curl deletes the function, posts the function
  policy, then uploads the program and the three data files under base64 path
  segments, each with a JSON content type (what the script sends).
- iotex-user-app.py: POST /instance with the user policy (S3 and user
  certificates made from one cert.conf, turned into policy strings by its
  regex) and no query, expecting 200 and ``resp["policy"]``; POST
  /s3_stream_veracruz with the S3 identity; then execute_program.sh's first
  step (the user writes the key and IV); DELETE /instance/<id>, expecting 200.

The stack is the real one (a detached subprocess, moto's server for AWS, real
runtime processes). The program and data bytes are ours; only their hashes
are in the policies, as in the seed.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import requests

from ipoc.client import VeracruzClient
from tests.compat.identities import cert_conf_identity
from tests.support.local_stack import aws_client

FILES = {
    "/program/detector.wasm": b"\0asm\x01\0\0\0 the small detector",
    "/program_data/coco.names": b"person\nbicycle\ncar\n",
    "/program_data/yolov3.cfg": b"[net]\nwidth=416\nheight=416\n",
    "/program_data/yolov3.weights": bytes(range(256)) * 64,
}


def cert_to_string_veracruz(pem: str) -> str:
    """The original user app's certToStringVeracruz, verbatim in effect."""
    return re.sub("([^-])\n([^-])|\n$", r"\g<1>\g<2>", pem)


def function_policy_small() -> dict:
    """function_policy_small.json's shape (seed README), with the hashes of our bytes."""
    sha = {path: hashlib.sha256(data).hexdigest() for path, data in FILES.items()}
    return {
        "data_files": [
            {"data_file": path, "pi_hash": sha[path]} for path in FILES if path.startswith("/program_data/")
        ],
        "debug": True,
        "enable_clock": True,
        "execution_strategy": "JIT",
        "file_rights": [
            {"file_name": "/program/", "rights": 534084},
            {"file_name": "/program_data/", "rights": 534084},
        ],
        "function": "vod_small",
        "max_memory_mib": 2000,
        "programs": [
            {
                "file_rights": [
                    {"file_name": "/program_data/", "rights": 24582},
                    {"file_name": "/s3_app_input/", "rights": 24582},
                    {"file_name": "/user_input/", "rights": 24582},
                    {"file_name": "/output/", "rights": 550470},
                    {"file_name": "/program_internal/", "rights": 550470},
                    {"file_name": "stdout", "rights": 534084},
                    {"file_name": "stderr", "rights": 534084},
                ],
                "id": 0,
                "pi_hash": sha["/program/detector.wasm"],
                "program_file_name": "/program/detector.wasm",
            }
        ],
    }


REGISTER_SMALL = r"""
set -u
echo "Acessing CCFaaS at $CCFAAS"
echo "=============Deleting function"
curl -s -X DELETE "$CCFAAS/function/vod_small"; echo
echo "=============Registering function"
curl -s -X POST -H "Content-Type: application/json" --data-binary @function_policy_small.json "$CCFAAS/function"; echo
echo "=============Provisioning program"
curl -s -X POST -H "Content-Type: application/json" --data-binary @detector.wasm \
     "$CCFAAS/function/vod_small/program/$(echo -n /program/detector.wasm | base64)"; echo
echo "=============Provisioning data"
for f in coco.names yolov3.cfg yolov3.weights; do
  curl -s -X POST -H "Content-Type: application/json" --data-binary @$f \
       "$CCFAAS/function/vod_small/data_file/$(echo -n /program_data/$f | base64)"; echo
done
"""


def test_register_function_small_then_the_user_apps_calls(stack, tmp_path: Path):  # noqa: F811
    ccfaas, s3app = stack["url"]["ccfaas"], stack["url"]["s3stream"]
    # register-function-small.sh, with curl
    (tmp_path / "function_policy_small.json").write_text(json.dumps(function_policy_small(), indent=2))
    for path, data in FILES.items():
        (tmp_path / path.rsplit("/", 1)[1]).write_bytes(data)
    script = subprocess.run(
        ["bash", "-c", REGISTER_SMALL],
        cwd=tmp_path,
        env={"CCFAAS": ccfaas, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert script.returncode == 0, script.stderr
    status = requests.get(f"{ccfaas}/function/vod_small/status", timeout=10).json()
    assert status["loaded"] is True, (script.stdout, status)

    # iotex-user-app.py: the S3 and user certificates from one cert.conf
    user, s3 = cert_conf_identity(), cert_conf_identity()
    user_policy = {
        "function": "vod_small",
        "instanceid": "0",
        "identities": [
            {
                "certificate": cert_to_string_veracruz(s3.certificate),
                "file_rights": [{"file_name": "/s3_app_input/", "rights": 534084}],
            },
            {
                "certificate": cert_to_string_veracruz(user.certificate),
                "file_rights": [
                    {"file_name": "/user_input/", "rights": 534084},
                    {"file_name": "/output/", "rights": 24582},
                    {"file_name": "stdout", "rights": 24582},
                    {"file_name": "stderr", "rights": 24582},
                    {"file_name": "/program/", "rights": 536879104},
                ],
            },
        ],
    }
    response = requests.post(
        f"{ccfaas}/instance",
        data=json.dumps(user_policy, indent=4),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text  # the app exits 1 on anything else
    policy = response.json()["policy"]
    (tmp_path / "policy_0").write_text(policy)  # "Writing policy to policy_0"

    # the video, encrypted, in S3 (moto's server here)
    s3_client = aws_client(stack["url"]["aws"], "s3")
    video = bytes(range(251)) * 4099
    s3_client.put_object(Bucket="ipoc-local-inputs", Key="in_enc.h264", Body=video)
    streamed = requests.post(
        f"{s3app}/s3_stream_veracruz",
        json={
            "s3": {
                "bucket": "ipoc-local-inputs",
                "filename": "in_enc.h264",
                "region_name": "us-east-1",
                "aws_access_key_id": "local",
                "aws_secret_access_key": "local",
            },
            "veracruz": {
                "filename": "/s3_app_input/in_enc.h264",
                "policy": policy,
                "certificate": cert_to_string_veracruz(s3.certificate),
                "key": cert_to_string_veracruz(s3.private_key),
            },
        },
        timeout=120,
    )
    assert streamed.status_code == 200, streamed.text

    # execute_program.sh, first step: the user (same subject as the S3 app) writes the key and IV
    with VeracruzClient((tmp_path / "policy_0").read_text(), user.certificate, user.private_key) as client:
        client.write_file("/user_input/key", b"k" * 16)
        client.write_file("/user_input/iv", b"i" * 16)
    port = json.loads(policy)["veracruz_server_url"].rsplit(":", 1)[1]
    runtime_dir = stack["home"] / "local" / "runtimes" / port
    assert [p.read_bytes() for p in runtime_dir.rglob("in_enc.h264")] == [video]

    # DELETE /instance/<id>: the app exits 0 on 200
    deleted = requests.delete(f"{ccfaas}/instance/0", timeout=60)
    assert deleted.status_code == 200, deleted.text

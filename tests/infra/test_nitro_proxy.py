"""Our proxy in AWS: the synthesized image asset and allow-list, the chart's two implementations, and the
container's command run for real with only the distributions the image installs.

No docker engine here: the image itself cannot be built. Instead the proxy
runs as the chart would start it (args and env rendered by the real helm),
in a subprocess that refuses to import any distribution the Dockerfile does
not install, and answers Veracruz's /Start over a real socket.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from infra.constructs.proxy_image import CONTEXT, DOCKERFILE, PROXY_PACKAGES, ROOT
from ipoc.certs import new_certificate_authority
from ipoc.wire import transport_protocol_pb2 as pb
from ipoc.wire.carrier import port_open
from ipoc.wire.framing import frame
from tests.infra.test_chart import render
from tests.support.waiting import free_port, wait_until

MEASUREMENT = "ab" * 32


def test_synth_stages_the_proxy_image_and_passes_the_allow_list(synth, platform_json) -> None:
    [chart] = [r for r in platform_json["Resources"].values() if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"]
    parts = chart["Properties"]["Values"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    assert '"implementation":"ipoc"' in text
    assert "container-assets" in text  # the image URI is the asset's, in the bootstrap ECR repository
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert f'"pcr0AllowList":["{context["ipoc:runtimeMeasurement"]}"]' in text
    # the staged build context holds what the Dockerfile copies and nothing else
    manifest = json.loads(Path(synth.assembly.directory, "Ipoc.assets.json").read_text())
    [image] = manifest["dockerImages"].values()
    assert image["source"]["dockerFile"] == DOCKERFILE and image["source"]["platform"] == "linux/amd64"
    requirements = image["source"]["dockerBuildArgs"]["PROXY_REQUIREMENTS"].split()
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [r.split("==")[0] for r in requirements] == list(PROXY_PACKAGES) and set(requirements) <= set(pinned)
    staged = Path(synth.assembly.directory, image["source"]["directory"])
    assert sorted(p.name for p in staged.iterdir()) == sorted({c.split("/")[0] for c in CONTEXT})
    assert not list(staged.rglob("__pycache__"))


def test_the_chart_switches_back_to_the_veracruz_proxy() -> None:
    objects = [
        d
        for d in yaml.safe_load_all(
            render(
                "--set", "proxy.implementation=veracruz", "--set", "proxy.image=veracruz/veracruz-nitro:v1.3.3"
            ).stdout
        )
        if d
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "veracruz/veracruz-nitro:v1.3.3"
    assert container["command"][0] == "/work/proxy-attestation-server/proxy-attestation-server"
    assert "args" not in container and "env" not in container


@pytest.mark.parametrize(
    "values, message",
    [
        (["--set", "proxy.pcr0AllowList=null"], "proxy.pcr0AllowList is empty"),
        (["--set", "proxy.image="], "proxy.image is required"),
        (["--set", "proxy.implementation=other"], "proxy.implementation must be ipoc or veracruz"),
    ],
)
def test_the_chart_refuses_an_unusable_proxy(values, message) -> None:
    result = render(*values, check=False)
    assert result.returncode != 0 and message in result.stderr


BLOCKER = r"""
import importlib.abc, runpy, sys
blocked = set(sys.argv[1].split())
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ImportError(f"{name} is not installed in the proxy image")
sys.meta_path.insert(0, Block())
sys.argv = ["ipoc", *sys.argv[2:]]
runpy.run_module("client", run_name="__main__")
"""


def blocked_modules() -> set[str]:
    """Top-level modules of every pinned distribution the image does not install (directly or as a dependency)."""
    pinned = [
        re.split(r"[\[=<>!~ ;]", d)[0].lower()
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    installed: set[str] = set()
    todo = list(PROXY_PACKAGES)
    while todo:
        name = todo.pop()
        if name in installed:
            continue
        installed.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[\[=<>!~ ;(]", requirement)[0].lower().replace("_", "-"))
    modules = metadata.packages_distributions()
    return {
        module
        for module, dists in modules.items()
        if any(d.lower() in pinned and d.lower() not in installed for d in dists)
    }


def test_the_chart_command_runs_with_only_the_image_packages(tmp_path) -> None:
    objects = [d for d in yaml.safe_load_all(render("--set", f"proxy.pcr0AllowList={{{MEASUREMENT}}}").stdout) if d]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    ca = new_certificate_authority()
    (tmp_path / "CACert.pem").write_text(ca.certificate)
    (tmp_path / "CAKey.pem").write_text(ca.private_key)
    port = free_port()
    args = [a.replace("/work/proxy-config-files", str(tmp_path)) for a in container["args"]]
    args = [str(port) if a == "3010" else ("127.0.0.1" if a == "0.0.0.0" else a) for a in args]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"IPOC_PCR0_ALLOWLIST": MEASUREMENT}
    blocked = blocked_modules()
    assert {"boto3", "moto", "wasmtime", "numpy"} <= blocked
    log = tmp_path / "proxy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", BLOCKER, " ".join(sorted(blocked)), "attestation", "serve", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", **env, "IPOC_HOME": str(tmp_path / "home")},
        )
    try:
        wait_until(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, timeout=30, what="the proxy's port")
        assert proc.poll() is None, log.read_text()

        def post(protocol: str) -> tuple[int, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = base64.b64encode(
                frame(
                    pb.ProxyAttestationServerRequest(
                        start_msg=pb.StartMsg(protocol=protocol, firmware_version="0.0")
                    ).SerializeToString()
                )
            )
            conn.request("POST", "/Start", body=body, headers={"Content-Type": "application/octet-stream"})
            reply = conn.getresponse()
            assert reply.version == 11  # HTTP/1.1
            result = reply.status, reply.read()
            conn.close()
            return result

        assert post("nitro")[0] == 200
        status, text = post("psa")  # no simulated platform in AWS mode
        assert status == 501 and b"does not serve the 'psa' protocol" in text
    finally:
        proc.terminate()
        proc.wait(10)
    assert "AWS Nitro Enclaves root G1 (sha256 641a0321" in log.read_text()


def test_allow_list_context_is_checked_and_starts_with_the_runtime_measurement() -> None:
    from infra.config import ConfigError, from_context

    extra = "cd" * 48
    config = from_context({"ipoc:pcr0AllowList": json.dumps([extra]), "ipoc:runtimeMeasurement": MEASUREMENT}.get)
    assert config.pcr0_allow_list == (MEASUREMENT, extra) and config.proxy == "ipoc"
    with pytest.raises(ConfigError, match="pcr0AllowList must be a JSON list of PCR0 values"):
        from_context({"ipoc:pcr0AllowList": '["ABC"]'}.get)
    with pytest.raises(ConfigError, match="proxy must be one of ipoc, veracruz"):
        from_context({"ipoc:proxy": "nginx"}.get)

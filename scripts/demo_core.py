"""`make demo` (core stage): the i-PoC timeline on one machine with the echo function.

Runs the real pieces as a user would: the proxy attestation service and a
runtime as `ipoc` subprocesses, the CCFaaS and VaaS policy composition from
the core library, and `ipoc veracruz` for the program provider and the user.
Later stages replace the composition step with the CCFaaS/VaaS services.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipoc.certs import new_identity  # noqa: E402
from ipoc.policy import Infrastructure, complete_policy, compose_vaas_policy, policy_hash  # noqa: E402
from ipoc.rights import OPEN_EXECUTE, READ, READ_WRITE, WRITE  # noqa: E402

IPOC = [sys.executable, "-m", "client"]
ECHO_WASM = ROOT / "build" / "functions" / "echo" / "echo.wasm"
timings: list[tuple[str, float]] = []


def step(title: str):
    class _Step:
        def __enter__(self):
            print(f"\n== {title}", flush=True)
            self.started = time.monotonic()

        def __exit__(self, *exc):
            timings.append((title, time.monotonic() - self.started))

    return _Step()


def ipoc(*args: str, **kwargs) -> subprocess.CompletedProcess:
    print("$ ipoc " + " ".join(shlex.quote(a) for a in args), flush=True)
    result = subprocess.run(IPOC + list(args), **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"demo failed: `ipoc {' '.join(args)}` exited {result.returncode}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo failed: process exited early:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"demo failed: port {port} did not open within {timeout} s:\n{log.read_text()}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ipoc-demo-"))
    os.environ["IPOC_HOME"] = str(work / "home")
    print(f"Demo workspace: {work}")
    processes: list[subprocess.Popen] = []
    try:
        with step("Start the proxy attestation service"):
            proxy_port = free_port()
            proxy_log = work / "proxy.log"
            proxy = subprocess.Popen(IPOC + ["attestation", "serve", "--port", str(proxy_port)],
                                     stdout=proxy_log.open("wb"), stderr=subprocess.STDOUT)
            processes.append(proxy)
            wait_for_port(proxy_port, proxy, proxy_log)
            ca_pem = (work / "home" / "attestation" / "ca-cert.pem").read_text()
            print(f"proxy on 127.0.0.1:{proxy_port}, CA certificate in {work / 'home' / 'attestation'}")

        with step("Publisher registers the echo function; user writes a user policy"):
            wasm = ECHO_WASM.read_bytes()
            function = {
                "function": "echo",
                "execution_strategy": "JIT",
                "max_memory_mib": 64,
                "programs": [{
                    "file_rights": [
                        {"file_name": "/input/", "rights": int(READ)},
                        {"file_name": "/output/", "rights": int(READ_WRITE)},
                        {"file_name": "stdout", "rights": int(WRITE)},
                        {"file_name": "stderr", "rights": int(WRITE)},
                    ],
                    "id": 0,
                    "pi_hash": hashlib.sha256(wasm).hexdigest(),
                    "program_file_name": "/program/echo.wasm",
                }],
                "debug": False,
                "enable_clock": False,
                "file_rights": [{"file_name": "/program/", "rights": int(WRITE)}],
            }
            loader, user = new_identity("program-loader"), new_identity("demo-user")
            loader.write(work / "loader.crt", work / "loader.key")
            user.write(work / "user.crt", work / "user.key")
            user_policy = {
                "function": "echo",
                "instanceid": "demo",
                "identities": [{
                    "certificate": user.certificate,
                    "file_rights": [
                        {"file_name": "/input/", "rights": int(WRITE)},
                        {"file_name": "/output/", "rights": int(READ)},
                        {"file_name": "stdout", "rights": int(READ)},
                        {"file_name": "stderr", "rights": int(READ)},
                        {"file_name": "/program/", "rights": int(OPEN_EXECUTE)},
                    ],
                }],
            }
            (work / "function.json").write_text(json.dumps(function, indent=4))
            (work / "user-policy.json").write_text(json.dumps(user_policy, indent=4))
            ipoc("policy", "validate", str(work / "function.json"), "--kind", "function")
            ipoc("policy", "validate", str(work / "user-policy.json"), "--kind", "user")

        with step("CCFaaS composes the VaaS policy; VaaS completes the full policy"):
            runtime_port = free_port()
            measurement = subprocess.run(IPOC + ["runtime", "measurement"], capture_output=True, text=True, check=True).stdout.strip()
            vaas = compose_vaas_policy(function, user_policy, loader.certificate)
            reply = complete_policy(vaas, Infrastructure(
                proxy_attestation_server_url=f"127.0.0.1:{proxy_port}", proxy_service_cert=ca_pem,
                runtime_hash=measurement, veracruz_server_url=f"127.0.0.1:{runtime_port}", platform="linux",
            ))
            policy_file = work / "policy.json"
            policy_file.write_text(reply["policy"])
            print(f"policy hash {policy_hash(reply['policy'])}")
            ipoc("policy", "explain", str(policy_file), env={**os.environ, "COLUMNS": "120"})

        with step("Start the runtime (it attests before opening its port)"):
            runtime_log = work / "runtime.log"
            runtime = subprocess.Popen(IPOC + ["runtime", "serve", str(policy_file)],
                                       stdout=runtime_log.open("wb"), stderr=subprocess.STDOUT)
            processes.append(runtime)
            wait_for_port(runtime_port, runtime, runtime_log)

        with step("Program provider loads the program (hash-checked)"):
            ipoc("veracruz", str(policy_file), "--identity", str(work / "loader.crt"), "--key", str(work / "loader.key"),
                 "--program", f"/program/echo.wasm={ECHO_WASM}")

        with step("User writes input, executes, reads results; the instance shuts down"):
            (work / "input.txt").write_text("confidential computing on one machine\n")
            ipoc("veracruz", str(policy_file), "--identity", str(work / "user.crt"), "--key", str(work / "user.key"),
                 "--data", f"/input/data.txt={work / 'input.txt'}", "--compute", "/program/echo.wasm",
                 "--result", "stdout=-", "--result", f"/output/result.txt={work / 'result.txt'}")
            print("result.txt:\n" + (work / "result.txt").read_text())
            code = runtime.wait(30)
            print(f"runtime exited with {code}")
            if code != 0:
                raise SystemExit(f"demo failed: runtime exited {code}:\n{runtime_log.read_text()}")

        print("\n== Timings")
        width = max(len(t) for t, _ in timings)
        for title, seconds in timings:
            print(f"{title:<{width}}  {seconds:6.2f} s")
        print(f"{'total':<{width}}  {sum(s for _, s in timings):6.2f} s")
        print(f"\nEverything the demo wrote is in {work}")
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()

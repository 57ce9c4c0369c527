"""Control-plane benchmarks on the local stack (``ipoc local up`` on free loopback ports), in one run:

- instance create → READY, p50 and p95 over 20 instances, and the mean time spent in each workflow state, on a
  stack with the warm pool (``IPOC_WARM_POOL``, its default) and one without it (0), creates alternating between
  the two so both see the same machine load;
- S3 → enclave: the S3 streamer's throughput copying a 256 MiB object into an instance (its code in a
  process of its own, as in Lambda), divided by a raw S3 GET of the same object from the same local S3
  (RATIO), the streamer process's peak RSS growth, and the same copy through the local API;
- control-plane reads (GET /instance/<id>) from 50 concurrent clients: p50, p99, throughput, errors and the CPU
  time per read of the API processes and of the local AWS, in a closed loop (each client sends its next read
  once its last is answered: the stack's capacity; its mean latency is then 50 clients / throughput, Little's
  law), then paced (the 50 clients offering 1,000 and then 1,500 reads/s together, each latency from the time
  its request was due: latency at a stated load, and at half as much again), with the APIs served as
  ``ipoc local up`` serves them by default (a forked process per core) and by the stack process alone
  (``--api-workers 0``), the variants' rounds alternating so that the machine's load hits them alike;
- ``ipoc local up --detach`` until ready: from an empty IPOC_HOME, and with 100 registered functions and 1 GiB
  of artifacts kept (after ``down``, and after a ``kill -9`` of the stack); wall time and the CPU time of
  the start's processes.

With ``--baseline REV`` the same creates (with and without the pool), reads (its default and
``--api-workers 2``) and starts also run on that revision's stack (its tree exported
with ``git archive``, run with this checkout's virtualenv), side by side in the same rounds: ``_before``
names, and RATIO lines of now over before.

    make bench            (or: .venv/bin/python bench/control_plane.py)
    .venv/bin/python bench/control_plane.py --only reads,restart --baseline db00024
    .venv/bin/python bench/control_plane.py --only instances --baseline 3159fe1
    .venv/bin/python bench/control_plane.py --only reads --api-workers 3

Prints ``RATIO``/``FIGURE`` lines and writes build/bench/control_plane.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the imports below (noqa: E402) need the checkout on the path

import requests  # noqa: E402

from bench.harness import policies, processes  # noqa: E402
from bench.harness.stack import aws_client, register_echo, stack_env, stack_ports, up_args  # noqa: E402
from bench.harness.waiting import free_port_range, wait_until  # noqa: E402
from ipoc.certs import Identity, new_identity  # noqa: E402

INSTANCES = 20
WARM_POOL = 2  # the local stack's default pool size
STREAM_MIB = 256
CLIENTS = 50
READS_PER_CLIENT = 40
ECHO_WASM = ROOT / "build" / "functions" / "echo" / "echo.wasm"
ECHO_BENCH = "echo_bench"  # the function the benchmarks register
ALICE = {"X-Ipoc-Local-User": "alice"}
figures: list[tuple[str, str, float, str]] = []


def report(kind: str, name: str, value: float, unit: str = "") -> None:
    figures.append((kind, name, value, unit))
    print(f"{kind} {name} {value:.3f}{(' ' + unit) if unit else ''}", flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def ipoc(
    args: list[str], env: dict[str, str], tree: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``ipoc ARGS`` as the CLI of ``tree`` (this checkout, or a baseline revision's exported tree)."""
    if tree == ROOT:
        return processes.run(args, env=env, timeout=timeout)
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=tree,
        env={**os.environ, **env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def export_revision(revision: str) -> Path:
    """``revision``'s tree under build/bench (``git archive``): its stack, run by this checkout's virtualenv."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = ROOT / "build" / "bench" / f"control-plane-{commit[:12]}"
    if not (tree / "local" / "stack.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


class Stack:
    """`ipoc local up --detach` in its own IPOC_HOME on free ports; ``up`` returns the seconds until ready."""

    def __init__(self, slots: int, *extra: str, warm_pool: int | None = None, tree: Path = ROOT) -> None:
        self.tree = tree
        self.home = Path(tempfile.mkdtemp(prefix="ipoc-bench-stack-"))
        base = free_port_range(5 + slots)
        self.ports = stack_ports(base)
        self.args = up_args(base, slots, *extra)
        self.env = stack_env(self.home, **({} if warm_pool is None else {"IPOC_WARM_POOL": str(warm_pool)}))
        self.url = {k: f"http://127.0.0.1:{p}" for k, p in self.ports.items()}

    def up(self) -> float:
        started = time.perf_counter()
        result = ipoc(self.args, self.env, self.tree, timeout=180)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"ipoc local up failed: {result.stderr}")
        return elapsed

    def down(self) -> None:
        ipoc(["local", "down"], self.env, self.tree, timeout=120)

    def status(self) -> dict[str, Any]:
        return json.loads(ipoc(["local", "status", "--json"], self.env, self.tree).stdout)

    def kill(self) -> None:
        import signal

        state = self.status()
        os.kill(state["pid"], signal.SIGKILL)
        wait_until(
            lambda: ipoc(["local", "status"], self.env, self.tree).returncode == 1, timeout=30, what="the stack gone"
        )
        wait_until(lambda: not Path(f"/proc/{state['aws_pid']}").exists(), timeout=30, what="its local AWS gone")

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.home, ignore_errors=True)


@contextmanager
def local_stack(slots: int, *extra: str, warm_pool: int = WARM_POOL, tree: Path = ROOT) -> Iterator[dict[str, Any]]:
    stack = Stack(slots, *extra, warm_pool=warm_pool, tree=tree)
    try:
        stack.up()
        yield {"state": stack.status(), "url": stack.url}
    finally:
        stack.down()
        stack.remove()


def user_policy(instance_id: str, user: Identity, streamer: Identity) -> dict:
    return {
        "function": ECHO_BENCH,
        "instanceid": instance_id,
        "identities": [
            {"certificate": streamer.certificate, "file_rights": [{"file_name": "/input/", "rights": 534084}]},
            {"certificate": user.certificate, "file_rights": policies.USER_RIGHTS},
        ],
    }


def create_ready(ccfaas: str, instance_id: str, user: Identity, streamer: Identity) -> tuple[float, dict]:
    started = time.perf_counter()
    accepted = requests.post(
        f"{ccfaas}/instance?wait=0", json=user_policy(instance_id, user, streamer), headers=ALICE, timeout=30
    )
    assert accepted.status_code == 202, accepted.text

    def ready() -> dict | None:
        record = requests.get(f"{ccfaas}/instance/{instance_id}", headers=ALICE, timeout=30).json()
        if record["status"] == "FAILED":
            raise SystemExit(f"instance {instance_id} failed: {record.get('reason')}")
        return record if record["status"] == "READY" else None

    record = wait_until(ready, timeout=120, interval=0.02, what=f"{instance_id} READY")
    return time.perf_counter() - started, record


def state_times(sfn: Any, arn: str) -> dict[str, float]:
    """Seconds from each state's entry to its exit, from the execution's history."""
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered: dict[str, Any] = {}
    spent: dict[str, float] = {}
    for event in events:
        if "stateEnteredEventDetails" in event:
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                spent[name] = (event["timestamp"] - entered[name]).total_seconds()
    return spent


def delete(ccfaas: str, instance_id: str) -> None:
    deleted = requests.delete(f"{ccfaas}/instance/{instance_id}", headers=ALICE, timeout=120).json()
    assert deleted["status"] == "DELETED", deleted


def bench_instances(stacks: dict[str, dict[str, str]], user: Identity, streamer: Identity) -> None:
    """Create → READY on each stack, alternating (and alternating which goes first) so load hits both alike."""
    latencies: dict[str, list[float]] = {variant: [] for variant in stacks}
    per_state: dict[str, dict[str, list[float]]] = {variant: {} for variant in stacks}
    sfns = {variant: aws_client(urls["aws"], "stepfunctions") for variant, urls in stacks.items()}
    for n in range(INSTANCES):
        order = list(stacks)[n % len(stacks) :] + list(stacks)[: n % len(stacks)]  # each variant goes first in turn
        for variant in order:
            urls = stacks[variant]
            elapsed, record = create_ready(urls["ccfaas"], f"bench-{n}", user, streamer)
            latencies[variant].append(elapsed)
            for name, seconds in state_times(sfns[variant], record["execution_arn"]).items():
                per_state[variant].setdefault(name, []).append(seconds)
            delete(urls["ccfaas"], f"bench-{n}")
    for variant in stacks:
        report("FIGURE", f"instance_create_to_ready_p50_{variant}", percentile(latencies[variant], 0.50), "s")
        report("FIGURE", f"instance_create_to_ready_p95_{variant}", percentile(latencies[variant], 0.95), "s")
        # ComposePolicy and MarkReady: a baseline's (Allocate composes, Provision marks READY now)
        for name in ("ComposePolicy", "Allocate", "WaitForRuntime", "Provision", "MarkReady"):
            if name in per_state[variant]:  # WaitForRuntime runs only for a runtime not answering after Allocate
                report(
                    "FIGURE", f"workflow_state_{name}_mean_{variant}", statistics.mean(per_state[variant][name]), "s"
                )
    if {"with_pool", "without_pool"} <= set(stacks):
        report(
            "RATIO",
            "create_to_ready_p50_without_over_with_pool",
            percentile(latencies["without_pool"], 0.50) / percentile(latencies["with_pool"], 0.50),
        )
    for variant in ("with_pool", "without_pool"):
        if f"{variant}_before" in stacks:
            report(
                "RATIO",
                f"create_to_ready_p50_before_over_now_{variant}",
                percentile(latencies[f"{variant}_before"], 0.50) / percentile(latencies[variant], 0.50),
            )


# The S3 streamer's code in a process of its own, as in Lambda (the local stack serves moto in its
# own process, so its memory would hide the streamer's): prints bytes, seconds and peak RSS growth.
STREAMER = """
import json, sys, time
from pathlib import Path

def kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

from lambdas.s3stream.streamer import parse_request, stream
request = parse_request(json.loads(sys.stdin.read()))
baseline = kib("VmRSS")
started = time.perf_counter()
result = stream(request, 1024 * 1024, lambda *a, **k: None)
print(json.dumps({"bytes": result["bytes"], "seconds": time.perf_counter() - started,
                  "growth_kib": kib("VmHWM") - baseline}))
"""


def bench_stream(urls: dict[str, str], user: Identity, streamer: Identity) -> None:
    s3 = aws_client(urls["aws"], "s3")
    size = STREAM_MIB * 1024 * 1024
    chunk = os.urandom(1024 * 1024)
    upload = s3.create_multipart_upload(Bucket="ipoc-local-inputs", Key="users/local-admin/bench/blob")
    parts = []
    for number in range(1, STREAM_MIB // 16 + 1):
        reply = s3.upload_part(
            Bucket="ipoc-local-inputs",
            Key="users/local-admin/bench/blob",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=chunk * 16,
        )
        parts.append({"PartNumber": number, "ETag": reply["ETag"]})
    s3.complete_multipart_upload(
        Bucket="ipoc-local-inputs",
        Key="users/local-admin/bench/blob",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    _, record = create_ready(urls["ccfaas"], "bench-stream", user, streamer)

    started = time.perf_counter()
    body = s3.get_object(Bucket="ipoc-local-inputs", Key="users/local-admin/bench/blob")["Body"]
    got = sum(len(piece) for piece in body.iter_chunks(1024 * 1024))
    raw_seconds = time.perf_counter() - started
    assert got == size

    def request(target: str) -> dict:
        return {
            "s3": {"bucket": "ipoc-local-inputs", "filename": "users/local-admin/bench/blob"},
            "veracruz": {
                "filename": target,
                "policy": record["policy"],
                "certificate": streamer.certificate,
                "key": streamer.private_key,
            },
        }

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": urls["aws"],
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(ROOT),
    }
    ran = subprocess.run(
        [sys.executable, "-c", STREAMER],
        input=json.dumps(request("/input/blob")),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if ran.returncode != 0:
        raise SystemExit(f"the streamer failed: {ran.stderr[-3000:]}")
    measured = json.loads(ran.stdout)
    assert measured["bytes"] == size

    started = time.perf_counter()
    through_api = requests.post(urls["s3stream"] + "/s3_stream_veracruz", json=request("/input/blob2"), timeout=600)
    api_seconds = time.perf_counter() - started
    assert through_api.status_code == 200 and through_api.json()["bytes"] == size, through_api.text
    delete(urls["ccfaas"], "bench-stream")
    report("FIGURE", "s3_raw_get_throughput", size / raw_seconds / 2**20, "MiB/s")
    report("FIGURE", "s3_to_enclave_stream_throughput", size / measured["seconds"] / 2**20, "MiB/s")
    report("RATIO", "s3_stream_over_raw_get", raw_seconds / measured["seconds"])
    report("FIGURE", "streamer_peak_rss_growth", measured["growth_kib"] / 1024, "MiB")
    report("FIGURE", "s3_stream_through_local_api_throughput", size / api_seconds / 2**20, "MiB/s")


ROUNDS = 3  # rounds of reads per variant, alternating between the variants
PACED_RATES = (1000.0, 1500.0)  # reads/s the paced loads offer, all clients together: the goal's, and 1.5 times it

# The read load in a process of its own, on the same 2 cores as the stack, so it must cost little: CLIENTS
# clients, each on its own kept-alive connection, served by one thread over non-blocking sockets (`requests` cost
# ~1 ms of CPU per read, http.client threads ~0.23 ms). Closed loop ("closed"): each client sends its next GET
# once its last answer is in; a latency runs from sending to the whole answer. Paced ("paced:RATE"): together
# the clients offer RATE reads/s, each client's requests due at fixed times (CLIENTS/RATE apart, the clients
# spread over that interval); a request whose time comes while its client still waits for an answer is sent
# once that answer is in, and its latency runs from the time it was due, not from when it could be sent (as
# wrk2 measures: a slow answer is not hidden by the requests it delayed). Every answer is checked: status 200
# and a body that is the instance's JSON, READY; a refused, malformed or late answer counts as an error and the
# client reconnects. Prints the latencies, the errors, the wall time and the process's own CPU time.
READER = """
import json, selectors, socket, sys, time

host, port, path, user, clients, reads, mode = sys.argv[1:8]
clients, reads, name = int(clients), int(reads), path.rsplit("/", 1)[1]
period = clients / float(mode.split(":")[1]) if mode.startswith("paced:") else 0.0  # one client's, paced
request = f"GET {path} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nX-Ipoc-Local-User: {user}\\r\\n\\r\\n".encode()
selector = selectors.DefaultSelector()
latencies, errors = [], 0

def judge(head, body):
    lines = head.split(b"\\r\\n")
    fields = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(b":") for line in lines[1:]))
    record = json.loads(body) if lines[0].split(b" ", 2)[1] == b"200" else {}
    return record.get("instance") == name and record.get("status") == "READY", fields.get(b"connection") == b"close"

class Client:
    def __init__(self, due):
        self.left, self.sock, self.due, self.waiting = reads, None, due, False
        self.connect()

    def connect(self):
        if self.sock is not None:
            selector.unregister(self.sock)
            self.sock.close()
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(self.sock, selectors.EVENT_READ, self)

    def send(self, now):
        self.buffer, self.waiting = b"", True
        self.started = self.due if period else now  # paced: from the time it was due
        self.sock.sendall(request)

    def answer(self):
        \"\"\"None until the whole answer is in; then (ok, close).\"\"\"
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk
        head, found, body = self.buffer.partition(b"\\r\\n\\r\\n")
        if not found:
            return None
        length = next(int(v) for k, _, v in (l.partition(b":") for l in head.split(b"\\r\\n")[1:])
                      if k.strip().lower() == b"content-length")
        return judge(head, body[:length]) if len(body) >= length else None

cpu, started = time.process_time(), time.perf_counter()
everyone = [Client(started + n * period / clients) for n in range(clients)]
running, sweep = clients, True
while running:
    if sweep:  # the first requests; paced: every request whose time has come, if its client is free
        now = time.perf_counter()
        for client in everyone:
            if client.left and not client.waiting and client.due <= now:
                try:
                    client.send(now)
                except OSError:
                    errors += client.left
                    client.left = 0
                    running -= 1
        if not running:
            break
    sweep = bool(period)
    upcoming = [c.due for c in everyone if c.left and not c.waiting] if period else []
    ready = selector.select(timeout=max(0.0, min(upcoming) - time.perf_counter()) if upcoming else 60)
    if not ready and not upcoming:
        errors += sum(c.left for c in everyone)  # nothing answered for 60 s
        break
    for key, _ in ready:
        client = key.data
        try:
            outcome = client.answer()
            if outcome is None:
                continue
            ok, close = outcome
        except (OSError, ValueError, IndexError, StopIteration):
            ok, close = False, True
        latencies.append(time.perf_counter() - client.started)
        errors += not ok
        client.left -= 1
        client.waiting = False
        client.due += period  # paced: the next one's time; closed: 0, always due
        try:
            if close and client.left:
                client.connect()
            if client.left and not period:  # closed loop: at once
                client.send(time.perf_counter())
        except OSError:
            errors += client.left
            client.left = 0
        if not client.left:
            running -= 1
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"latencies": latencies, "errors": errors, "seconds": seconds, "cpu": cpu}))
"""


def read_round(url: str, mode: str = "closed") -> tuple[list[float], int, float, float]:
    """CLIENTS clients, each READS_PER_CLIENT reads on its own kept-alive connection, from a process of their
    own, in a closed loop or paced (``paced:RATE``): (latencies, errors, seconds, the load generator's CPU
    seconds)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    ran = subprocess.run(
        [sys.executable, "-c", READER, parts.hostname or "", str(parts.port), parts.path, ALICE["X-Ipoc-Local-User"]]
        + [str(CLIENTS), str(READS_PER_CLIENT), mode],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if ran.returncode != 0:
        raise SystemExit(f"the read load failed: {ran.stderr[-3000:]}")
    measured = json.loads(ran.stdout)
    return measured["latencies"], measured["errors"], measured["seconds"], measured["cpu"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_reads(stacks: dict[str, dict[str, Any]], user: Identity, streamer: Identity) -> dict[str, dict[str, float]]:
    """GET /instance/<id> on each stack, ROUNDS rounds alternating the stacks (and which goes first), each round a
    closed loop, then the same clients paced at each of PACED_RATES; also the CPU time per read (closed loop) of the
    processes serving the APIs (the stack process or its API workers) and of the local AWS. One closed round per
    stack first warms it up, unmeasured."""
    for stack in stacks.values():
        create_ready(stack["url"]["ccfaas"], "bench-reads", user, streamer)
        # not measured: each API process's first requests make its clients (a boto3 Session, ~0.1 s of CPU each)
        read_round(f"{stack['url']['ccfaas']}/instance/bench-reads")
    measured: dict[str, dict[str, Any]] = {
        variant: {
            "latencies": [],
            "errors": 0,
            "seconds": 0.0,
            "api_cpu": 0.0,
            "aws_cpu": 0.0,
            "client_cpu": 0.0,
            "paced": {rate: {"latencies": [], "errors": 0, "seconds": 0.0} for rate in PACED_RATES},
        }
        for variant in stacks
    }
    loads = []
    for n in range(ROUNDS):
        for variant in list(stacks) if n % 2 == 0 else list(reversed(stacks)):
            state = stacks[variant]["state"]
            url = f"{stacks[variant]['url']['ccfaas']}/instance/bench-reads"
            api_pids = state.get("api_worker_pids") or [state["pid"]]
            before = sum(map(cpu_seconds, api_pids)), cpu_seconds(state["aws_pid"])
            latencies, errors, seconds, client_cpu = read_round(url)
            m = measured[variant]
            m["client_cpu"] += client_cpu
            m["api_cpu"] += sum(map(cpu_seconds, api_pids)) - before[0]
            m["aws_cpu"] += cpu_seconds(state["aws_pid"]) - before[1]
            m["latencies"] += latencies
            m["errors"] += errors
            m["seconds"] += seconds
            for rate, paced in m["paced"].items():
                latencies, errors, seconds, _ = read_round(url, f"paced:{rate:g}")
                paced["latencies"] += latencies
                paced["errors"] += errors
                paced["seconds"] += seconds
            loads.append(os.getloadavg()[0])
    report("FIGURE", "control_plane_read_load_average_1min", os.getloadavg()[0])  # the other work on the machine
    report("FIGURE", "control_plane_read_load_average_1min_max", max(loads))
    figures_by_variant = {}
    for variant, stack in stacks.items():
        delete(stack["url"]["ccfaas"], "bench-reads")
        m = measured[variant]
        label = "" if variant == "now" else f"_{variant}"
        figures_by_variant[variant] = {
            "p50": percentile(m["latencies"], 0.50) * 1000,
            "p99": percentile(m["latencies"], 0.99) * 1000,
            "throughput": len(m["latencies"]) / m["seconds"],
        }
        figures = figures_by_variant[variant]
        report("FIGURE", f"control_plane_read_p50{label}", figures["p50"], "ms")
        report("FIGURE", f"control_plane_read_p99{label}", figures["p99"], "ms")
        report("FIGURE", f"control_plane_read_throughput{label}", figures["throughput"], "req/s")
        report("FIGURE", f"control_plane_read_errors{label}", m["errors"], "errors")
        report(
            "FIGURE",
            f"control_plane_read_cpu_api_processes{label}",
            m["api_cpu"] / len(m["latencies"]) * 1000,
            "ms/read",
        )
        report(
            "FIGURE", f"control_plane_read_cpu_local_aws{label}", m["aws_cpu"] / len(m["latencies"]) * 1000, "ms/read"
        )
        report(
            "FIGURE",
            f"control_plane_read_cpu_load_generator{label}",
            m["client_cpu"] / len(m["latencies"]) * 1000,
            "ms/read",
        )
        for rate, paced in m["paced"].items():
            name = f"control_plane_read_paced_{rate:g}_per_s"
            achieved = len(paced["latencies"]) / paced["seconds"]
            report("FIGURE", f"{name}_p50{label}", percentile(paced["latencies"], 0.50) * 1000, "ms")
            report("FIGURE", f"{name}_p99{label}", percentile(paced["latencies"], 0.99) * 1000, "ms")
            report("FIGURE", f"{name}_throughput{label}", achieved, "req/s")
            report("FIGURE", f"{name}_errors{label}", paced["errors"], "errors")
            if achieved < 0.95 * rate:  # a backlog grew: its p99 is the backlog's
                print(f"NOTE {variant} did not keep up with {rate:g} reads/s: its paced p99 measures a growing backlog")
    return figures_by_variant


FUNCTIONS = 100
ARTIFACT_MIB = 1024
STARTS = 3  # starts per variant and state; figures are medians


def populate(stack: Stack) -> None:
    """FUNCTIONS registered functions and ARTIFACT_MIB MiB of artifacts, through the stack's APIs and S3."""
    s3 = aws_client(stack.url["aws"], "s3")
    blob = os.urandom(ARTIFACT_MIB * 2**20 // FUNCTIONS)
    for n in range(FUNCTIONS):
        wasm = f"\0asm bench {n}".encode()
        name = f"bench_{n}"
        register_echo(stack.url["ccfaas"], name, wasm)
        s3.put_object(Bucket="ipoc-artifacts", Key=f"functions/{name}/weights", Body=blob)


def timed_up(stack: Stack) -> tuple[float, float]:
    """`ipoc local up --detach` until ready: (wall seconds, CPU seconds of the CLI, the stack and the local AWS).

    The CPU is read from /proc as soon as `up` returns (the same for every revision), so it includes the few ms
    the processes ran between ready and that read; with the warm-up deferred until ready, that is some of it."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = stack.up()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # `up` itself (waited for)
    state = json.loads((stack.home / "local" / "stack.json").read_text())
    return elapsed, cli + sum(cpu_seconds(int(state[key])) for key in ("pid", "aws_pid") if state.get(key))


def bench_restart(trees: dict[str, Path]) -> dict[str, dict[str, float]]:
    """`ipoc local up` until ready, for each variant: empty, then with FUNCTIONS functions and ARTIFACT_MIB MiB of
    artifacts kept (made once, through the first variant's stack; the others start from hard-linked copies of
    that state: layout 1 on both sides, and files are only ever replaced, never written in place). Wall time
    (what a developer waits) and CPU time (all processes of the start: the machine's load changes it far less)."""
    import shutil

    def start(stack: Stack, walls: list[float], cpus: list[float]) -> None:
        wall, cpu = timed_up(stack)
        walls.append(wall)
        cpus.append(cpu)

    variants = list(trees)
    empty: dict[str, list[float]] = {variant: [] for variant in trees}
    empty_cpu: dict[str, list[float]] = {variant: [] for variant in trees}
    for n in range(STARTS):
        for variant in variants if n % 2 == 0 else list(reversed(variants)):
            stack = Stack(2, tree=trees[variant])
            try:
                start(stack, empty[variant], empty_cpu[variant])
            finally:
                stack.down()
                stack.remove()
    source = Stack(2, tree=trees[variants[0]])
    stacks: dict[str, Stack] = {}
    try:
        source.up()
        populate(source)
        source.down()
        for variant, tree in trees.items():
            stacks[variant] = Stack(2, tree=tree)
            shutil.rmtree(stacks[variant].home)
            subprocess.run(["cp", "-al", str(source.home), str(stacks[variant].home)], check=True)
        kept: dict[str, list[float]] = {variant: [] for variant in trees}
        kept_cpu: dict[str, list[float]] = {variant: [] for variant in trees}
        killed: dict[str, list[float]] = {variant: [] for variant in trees}
        killed_cpu: dict[str, list[float]] = {variant: [] for variant in trees}
        for n in range(STARTS):
            for variant in variants if n % 2 == 0 else list(reversed(variants)):
                stack = stacks[variant]
                start(stack, kept[variant], kept_cpu[variant])
                names = requests.get(f"{stack.url['ccfaas']}/function", timeout=60).json()["functions"]
                assert len(names) == FUNCTIONS, (variant, len(names))
                stack.kill()
                start(stack, killed[variant], killed_cpu[variant])
                stack.down()
    finally:
        for stack in [source, *stacks.values()]:
            stack.down()
            stack.remove()
    result = {}
    kept_name = f"{FUNCTIONS}_functions_{ARTIFACT_MIB}_MiB"
    for variant in trees:
        label = "" if variant == "now" else f"_{variant}"
        result[variant] = {
            "empty": statistics.median(empty[variant]),
            "kept": statistics.median(kept[variant]),
            "killed": statistics.median(killed[variant]),
            "empty_cpu": statistics.median(empty_cpu[variant]),
            "kept_cpu": statistics.median(kept_cpu[variant]),
            "killed_cpu": statistics.median(killed_cpu[variant]),
        }
        for state, name in (("empty", "empty"), ("kept", kept_name), ("killed", f"after_kill_9_{kept_name}")):
            report("FIGURE", f"local_up_ready_{name}{label}", result[variant][state], "s")
            report("FIGURE", f"local_up_cpu_{name}{label}", result[variant][f"{state}_cpu"], "s")
    report("FIGURE", "load_average_1min", os.getloadavg()[0])
    return result


PARTS = ("instances", "reads", "stream", "restart")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Control-plane benchmarks on the local stack.")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run, of {', '.join(PARTS)}")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the creates, reads and starts on this git revision's stack (_before)",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        metavar="N",
        help="also run the reads on a stack of N API processes (_api_workers_N), alternating with the default",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if not ECHO_WASM.exists():
        raise SystemExit(f"{ECHO_WASM} is missing: run `make functions`")
    trees = {"now": ROOT, **({"before": export_revision(args.baseline)} if args.baseline else {})}
    user, streamer = new_identity("bench-user"), new_identity("bench-streamer")
    if parts & {"instances", "stream"}:
        with local_stack(slots=2) as stack:
            urls = stack["url"]
            register_echo(urls["ccfaas"], ECHO_BENCH, ECHO_WASM.read_bytes())
            if "instances" in parts:
                with ExitStack() as started:
                    variants = {
                        "with_pool": urls,
                        "without_pool": started.enter_context(local_stack(2, warm_pool=0))["url"],
                    }
                    if "before" in trees:  # the baseline's stacks, in the same rounds
                        variants["with_pool_before"] = started.enter_context(local_stack(2, tree=trees["before"]))[
                            "url"
                        ]
                        variants["without_pool_before"] = started.enter_context(
                            local_stack(2, warm_pool=0, tree=trees["before"])
                        )["url"]
                    for name, variant_urls in variants.items():
                        if name != "with_pool":
                            register_echo(variant_urls["ccfaas"], ECHO_BENCH, ECHO_WASM.read_bytes())
                    bench_instances(variants, user, streamer)
            if "stream" in parts:
                bench_stream(urls, user, streamer)
    if "reads" in parts:
        with ExitStack() as started:
            stacks = {  # now: the default, one API process per core; stack_process: --api-workers 0
                "now": started.enter_context(local_stack(2, warm_pool=0)),
                "stack_process": started.enter_context(local_stack(2, "--api-workers", "0", warm_pool=0)),
            }
            if args.api_workers is not None:  # more processes than cores: do they absorb the GIL and I/O waits?
                stacks[f"api_workers_{args.api_workers}"] = started.enter_context(
                    local_stack(2, "--api-workers", str(args.api_workers), warm_pool=0)
                )
            if "before" in trees:  # the baseline's default (the stack process) and its --api-workers 2
                stacks["before"] = started.enter_context(local_stack(2, warm_pool=0, tree=trees["before"]))
                stacks["before_two_api_workers"] = started.enter_context(
                    local_stack(2, "--api-workers", "2", warm_pool=0, tree=trees["before"])
                )
            for stack in stacks.values():
                register_echo(stack["url"]["ccfaas"], ECHO_BENCH, ECHO_WASM.read_bytes())
            reads = bench_reads(stacks, user, streamer)
        report(
            "RATIO",
            "control_plane_read_throughput_now_over_stack_process",
            reads["now"]["throughput"] / reads["stack_process"]["throughput"],
        )
        if "before" in reads:
            best = max(("before", "before_two_api_workers"), key=lambda variant: reads[variant]["throughput"])
            report(
                "RATIO",
                "control_plane_read_throughput_now_over_best_before",
                reads["now"]["throughput"] / reads[best]["throughput"],
            )
            report("RATIO", "control_plane_read_p99_best_before_over_now", reads[best]["p99"] / reads["now"]["p99"])
    if "restart" in parts:
        started_up = bench_restart(trees)
        if "before" in started_up:
            for state in ("empty", "kept", "empty_cpu", "kept_cpu"):
                report(
                    "RATIO",
                    f"local_up_ready_{state}_before_over_now",
                    started_up["before"][state] / started_up["now"][state],
                )
    out = ROOT / "build" / "bench" / "control_plane.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps([{"kind": k, "name": n, "value": v, "unit": u} for k, n, v, u in figures], indent=2) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

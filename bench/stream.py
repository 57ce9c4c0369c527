"""S3 → enclave streaming: the S3 streamer's throughput against a raw GET of the same object, before
and after issue 16's streaming work, side by side in one run.

    .venv/bin/python bench/stream.py [--baseline main] [--size-mib 256] [--rounds 3]

One moto S3 server process holds the object. Each variant (this tree, and the ``--baseline``
revision's tree from ``git archive``) has its own runtime process (proxy and runtime, as attested
locally) and runs the streamer's ``stream()`` in a process of its own, as in Lambda. Rounds
alternate raw GET, baseline, this tree (the two trees taking turns to go first), so the machine's load
falls on all alike. Figures are
medians over the rounds: wall-clock MiB/s, the transfer phase alone (``stream_file``, after the GET
and the attestation), CPU seconds per GiB of the streamer (whole request and transfer phase) and of
the runtime (and the runtime's kernel share), and the streamer's peak RSS growth. Each round also
times a raw GET written into a file beside the runtimes' (what storing the bytes costs here, which
the runtime pays and a raw GET does not). Last, with nothing else running, it measures the stream's
floor: the CPU per MiB of the work the Veracruz wire and the policy add to a raw GET, each part alone
(sealing and opening the TLS records with the policy's suite, base64 both ways, the base64 through
loopback TCP, the page-cache write), against what the two ends spent, and the transfer rate 0.4 of this
run's raw GET needs. Prints ``RATIO``/``FIGURE`` lines and writes build/bench/stream.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any

import boto3
import psutil
import pybase64

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the imports below (noqa: E402) need the checkout on the path

from bench.harness.waiting import free_port, wait_until  # noqa: E402
from ipoc.certs import new_identity  # noqa: E402
from ipoc.policy import CIPHERSUITE  # noqa: E402
from ipoc.wire.carrier import port_open  # noqa: E402
from ipoc.wire.tls import MAX_PLAINTEXT, openssl_suite  # noqa: E402
from runtime.records import ClientKeys  # noqa: E402

GOAL = 0.4  # issue 16: the stream at 0.4 of a raw GET of the same object or better

BUCKET, KEY = "bench-inputs", "bench/blob"

# Runs a tree's code, not this worktree's editable install: argv[1] is the tree.
PRELUDE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path.insert(0, sys.argv[1])
"""

# A proxy and a runtime for the streamer's identity; prints the policy, then serves until killed.
SERVE = (
    PRELUDE
    + """
import json, tempfile, threading
from pathlib import Path
from ipoc.certs import Identity
from ipoc.policy import parse_full_policy
from runtime.attestation.service import make_server
from runtime.measurement import measurement
from runtime.server import build_server
sys.path.append(sys.argv[2])  # this tree's bench.harness (ports, example policies) if the tree has none
from bench.harness import policies
from bench.harness.waiting import free_port

streamer = Identity(**json.loads(sys.stdin.read()))
home = Path(tempfile.mkdtemp(prefix="ipoc-bench-stream-"))
proxy = make_server("127.0.0.1", 0, home / "attestation", home / "platform")
threading.Thread(target=proxy.serve_forever, daemon=True).start()
text = policies.full_policy(
    policies.vaas_policy([(streamer, [{"file_name": "/input/", "rights": 534084}])]),
    proxy_url=f"127.0.0.1:{proxy.server_address[1]}", proxy_cert=proxy.state.ca.certificate_pem,
    measurement=measurement(), port=free_port(),
)
server, scratch = build_server(parse_full_policy(text), platform_dir=home / "platform", measurement=measurement(),
                               scratch_parent=home)
print(json.dumps({"policy": text, "scratch": str(scratch)}), flush=True)
server.serve_forever()
"""
)

# The streamer's stream() in a process of its own; times the transfer phase (stream_file) apart.
STREAMER = (
    PRELUDE
    + """
import json, resource, time
from pathlib import Path
from ipoc.client import VeracruzClient
from lambdas.s3stream.streamer import parse_request, stream

def kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

def process_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

transfer, transfer_cpu, transfer_start = [], [], []
original = VeracruzClient.stream_file
def timed(self, *args, **kwargs):
    started, cpu_started = time.perf_counter(), process_cpu()
    transfer_start.append(started)
    try:
        return original(self, *args, **kwargs)
    finally:
        transfer.append(time.perf_counter() - started)
        transfer_cpu.append(process_cpu() - cpu_started)
VeracruzClient.stream_file = timed

request = parse_request(json.loads(sys.stdin.read()))
baseline = kib("VmRSS")
cpu = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
result = stream(request, int(sys.argv[2]), lambda *a, **k: None)
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"bytes": result["bytes"], "seconds": seconds, "transfer_seconds": transfer[0],
                  "setup_seconds": transfer_start[0] - started,
                  "transfer_cpu_seconds": transfer_cpu[0],
                  "cpu_seconds": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
                  "growth_kib": kib("VmHWM") - baseline}))
"""
)

# A raw GET; given a path (argv[3]), its bytes also go into a file there (1 MiB writes, as the runtime
# stores a streamed file), which tells what storing the bytes alone costs on this machine.
RAW = """
import json, os, sys, time, resource, boto3
s3 = boto3.client("s3")
started = time.perf_counter()
body = s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"]
first_byte = time.perf_counter() - started
before = resource.getrusage(resource.RUSAGE_SELF)
if len(sys.argv) > 3:
    with open(sys.argv[3], "wb") as out:
        got = sum(out.write(piece) for piece in body.iter_chunks(1024 * 1024))
else:
    got = sum(len(piece) for piece in body.iter_chunks(1024 * 1024))
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
if len(sys.argv) > 3:
    os.unlink(sys.argv[3])
print(json.dumps({"bytes": got, "seconds": seconds, "first_byte_seconds": first_byte,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "sys_seconds": usage.ru_stime - before.ru_stime}))
"""


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wire_floor(mib: int = 32, rounds: int = 5) -> dict[str, float]:
    """CPU ms per MiB streamed of each part of the work the wire and the policy add to a raw GET, alone
    and at its best (fastest of ``rounds`` over ``mib`` MiB): what a data path with no other cost, in
    any language, would still spend here. The TLS records are sealed and opened with the AEAD of the
    policy's suite (OpenSSL's, through ``cryptography``), base64 is the wire's (``pybase64``, SIMD),
    the loopback TCP figure holds both ends of the base64's trip, and the write goes into the page cache
    as the runtime stores a file. The S3 read is left out: a raw GET pays it too."""
    data = os.urandom(1 << 20)
    keys = ClientKeys(openssl_suite(CIPHERSUITE), os.urandom(48))
    aead: Any = keys.aead
    nonce, header = os.urandom(12), bytes(5)
    records = [data[at : at + MAX_PLAINTEXT] + b"\x17" for at in range(0, len(data), MAX_PLAINTEXT)]
    sealed = [aead.encrypt(nonce, record, header) for record in records]
    encoded = pybase64.b64encode(b"".join(sealed))

    def seal(times: int) -> None:
        for _ in range(times):
            for record in records:
                aead.encrypt(nonce, record, header)

    def open_(times: int) -> None:
        for _ in range(times):
            for record in sealed:
                aead.decrypt(nonce, record, header)

    def base64_both_ways(times: int) -> None:
        for _ in range(times):
            pybase64.b64decode(pybase64.b64encode(data), validate=True)

    def loopback_tcp(times: int) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            with socket.create_connection(listener.getsockname()) as sender, listener.accept()[0] as receiver:
                expected = len(encoded) * times

                def receive() -> None:
                    buffer, got = bytearray(1 << 18), 0
                    while got < expected:
                        got += receiver.recv_into(buffer) or expected  # a close ends the count too

                reader = threading.Thread(target=receive)
                reader.start()
                for _ in range(times):
                    sender.sendall(encoded)
                reader.join(timeout=60)

    def page_cache_write(times: int) -> None:
        with tempfile.TemporaryFile() as out:
            for _ in range(times):
                out.write(data)
            out.flush()

    parts = {
        "seal": seal,
        "open": open_,
        "base64_both_ways": base64_both_ways,
        "loopback_tcp": loopback_tcp,
        "page_cache_write": page_cache_write,
    }
    floor = {}
    for name, work in parts.items():
        spent = []
        for _ in range(rounds):
            started = process_cpu()
            work(mib)
            spent.append((process_cpu() - started) / mib * 1000)
        floor[name] = min(spent)
    return floor


def run_json(args: list[str], env: dict[str, str], stdin: str = "") -> dict[str, Any]:
    ran = subprocess.run(args, input=stdin, env=env, capture_output=True, text=True, timeout=900)
    if ran.returncode != 0:
        raise SystemExit(f"{args[:3]} failed: {ran.stderr[-3000:]}")
    return json.loads(ran.stdout.strip().splitlines()[-1])


def export_tree(revision: str, into: Path) -> Path:
    """The files of ``revision`` (git archive), to run its code beside this tree's."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision], check=True, capture_output=True
    )
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def put_object(s3: Any, size_mib: int) -> int:
    s3.create_bucket(Bucket=BUCKET)
    chunk = os.urandom(1 << 20) * 16
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)
    parts = []
    for number in range(1, size_mib // 16 + 1):
        reply = s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"], PartNumber=number, Body=chunk)
        parts.append({"PartNumber": number, "ETag": reply["ETag"]})
    s3.complete_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
    return (size_mib // 16) * 16 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with (default main); '' for none")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=1 << 20, help="the streamer's chunk (IPOC_STREAM_CHUNK's default)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ipoc-bench-stream-"))
    trees = {"after": ROOT}
    if args.baseline:
        known = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", args.baseline + "^{commit}"],
            capture_output=True,
        )
        if known.returncode == 0:
            trees = {"before": export_tree(args.baseline, home / "baseline"), **trees}
        else:
            print(f"NOTE no revision {args.baseline!r} in this clone: no before/after comparison")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("PYTHONPATH", None)
    streamer = new_identity("bench-streamer")
    identity = json.dumps({"certificate": streamer.certificate, "private_key": streamer.private_key})
    processes: list[subprocess.Popen[str]] = []
    homes = [home]  # each round leaves hundreds of MiB there: removed whatever happens
    try:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        processes.append(moto)
        s3_server = psutil.Process(moto.pid)
        wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="moto server")
        size = put_object(
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            ),
            args.size_mib,
        )
        runtimes: dict[str, tuple[psutil.Process, str]] = {}
        for name, tree in trees.items():
            proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(tree), str(ROOT)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            processes.append(proc)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(identity)
            proc.stdin.close()
            started = json.loads(proc.stdout.readline())
            homes.append(Path(started["scratch"]).parent)  # the runtime's own directory, removed at the end
            runtimes[name] = (psutil.Process(proc.pid), started["policy"])

        samples: dict[str, list[dict[str, float]]] = {"raw": [], "raw_to_file": [], **{name: [] for name in trees}}
        for round_number in range(args.rounds):
            samples["raw"].append(run_json([sys.executable, "-c", RAW, BUCKET, KEY], env))
            samples["raw_to_file"].append(
                run_json([sys.executable, "-c", RAW, BUCKET, KEY, str(home / f"raw{round_number}")], env)
            )
            # Each variant goes first in turn: the one right after the raw GET into a file (whose deleted file
            # leaves the page cache memory it has just touched) writes into warmer memory than the next.
            order = list(trees.items())
            for name, tree in order if round_number % 2 == 0 else order[::-1]:
                runtime, policy = runtimes[name]
                request = {
                    "s3": {"bucket": BUCKET, "filename": KEY},
                    "veracruz": {
                        "filename": f"/input/blob{round_number}",
                        "policy": policy,
                        "certificate": streamer.certificate,
                        "key": streamer.private_key,
                    },
                }
                before, s3_before = runtime.cpu_times(), s3_server.cpu_times()
                sample = run_json(
                    [sys.executable, "-c", STREAMER, str(tree), str(args.chunk)], env, json.dumps(request)
                )
                after, s3_after = runtime.cpu_times(), s3_server.cpu_times()
                sample["runtime_cpu_seconds"] = after.user + after.system - before.user - before.system
                sample["runtime_sys_seconds"] = after.system - before.system
                sample["s3_server_cpu_seconds"] = s3_after.user + s3_after.system - s3_before.user - s3_before.system
                assert sample["bytes"] == size, sample
                samples[name].append(sample)
    finally:
        for proc in processes:
            proc.kill()
            proc.wait(timeout=30)
        for directory in homes:
            shutil.rmtree(directory, ignore_errors=True)

    def median(name: str, field: str) -> float:
        return statistics.median(s[field] for s in samples[name])

    gib = size / 2**30
    results: dict[str, float] = {
        "size_mib": size / 2**20,
        "rounds": args.rounds,
        "raw_get_mib_per_s": size / median("raw", "seconds") / 2**20,
    }
    results["raw_get_first_byte_ms"] = median("raw", "first_byte_seconds") * 1000
    results["raw_get_to_file_mib_per_s"] = size / median("raw_to_file", "seconds") / 2**20
    results["raw_get_to_file_sys_s_per_gib"] = median("raw_to_file", "sys_seconds") / gib
    print(
        f"FIGURE s3_raw_get_throughput {results['raw_get_mib_per_s']:.0f} MiB/s "
        f"(median of {args.rounds}, {size >> 20} MiB; its first byte after {results['raw_get_first_byte_ms']:.0f} ms, "
        "the S3 server's own preparation); into a file "
        f"{results['raw_get_to_file_mib_per_s']:.0f} MiB/s, "
        f"kernel CPU {results['raw_get_to_file_sys_s_per_gib']:.2f} s/GiB"
    )
    for name in trees:
        prefix = f"stream_{name}"
        results.update(
            {
                f"{prefix}_mib_per_s": size / median(name, "seconds") / 2**20,
                f"{prefix}_transfer_mib_per_s": size / median(name, "transfer_seconds") / 2**20,
                f"{prefix}_over_raw_get": median("raw", "seconds") / median(name, "seconds"),
                f"{prefix}_transfer_over_raw_get": median("raw", "seconds") / median(name, "transfer_seconds"),
                f"{prefix}_streamer_cpu_s_per_gib": median(name, "cpu_seconds") / gib,
                f"{prefix}_streamer_transfer_cpu_s_per_gib": median(name, "transfer_cpu_seconds") / gib,
                f"{prefix}_runtime_cpu_s_per_gib": median(name, "runtime_cpu_seconds") / gib,
                f"{prefix}_runtime_sys_s_per_gib": median(name, "runtime_sys_seconds") / gib,
                f"{prefix}_peak_rss_growth_mib": max(s["growth_kib"] for s in samples[name]) / 1024,
                f"{prefix}_before_transfer_ms": median(name, "setup_seconds") * 1000,
                f"{prefix}_s3_server_cpu_s_per_gib": median(name, "s3_server_cpu_seconds") / gib,
            }
        )
        print(
            f"FIGURE s3_to_enclave_{name} {results[f'{prefix}_mib_per_s']:.0f} MiB/s, transfer phase "
            f"{results[f'{prefix}_transfer_mib_per_s']:.0f} MiB/s, CPU s/GiB streamer "
            f"{results[f'{prefix}_streamer_cpu_s_per_gib']:.2f} "
            f"(transfer phase {results[f'{prefix}_streamer_transfer_cpu_s_per_gib']:.2f}) "
            f"runtime {results[f'{prefix}_runtime_cpu_s_per_gib']:.2f} "
            f"(kernel {results[f'{prefix}_runtime_sys_s_per_gib']:.2f}), "
            f"peak RSS growth {results[f'{prefix}_peak_rss_growth_mib']:.0f} MiB; "
            f"{results[f'{prefix}_before_transfer_ms']:.0f} ms before the transfer (the GET's first byte, "
            f"attestation beside it); S3 server CPU {results[f'{prefix}_s3_server_cpu_s_per_gib']:.2f} s/GiB"
        )
        print(
            f"RATIO s3_stream_over_raw_get_{name} {results[f'{prefix}_over_raw_get']:.3f} "
            f"(transfer phase {results[f'{prefix}_transfer_over_raw_get']:.3f})"
        )
    floor = wire_floor()
    results.update({f"wire_floor_{part}_cpu_ms_per_mib": spent for part, spent in floor.items()})
    results["wire_floor_cpu_ms_per_mib"] = sum(floor.values())
    used = (median("after", "transfer_cpu_seconds") + median("after", "runtime_cpu_seconds")) / (size / 2**20) * 1000
    results["stream_after_transfer_cpu_ms_per_mib"] = used
    # The whole request at GOAL of the raw GET leaves the transfer what the time before it does not take.
    room = median("raw", "seconds") / GOAL - median("after", "setup_seconds")
    cores = os.cpu_count() or 1
    print(
        f"FIGURE stream_wire_floor {results['wire_floor_cpu_ms_per_mib']:.2f} CPU ms/MiB, each part alone: "
        + ", ".join(f"{part.replace('_', ' ')} {spent:.2f}" for part, spent in floor.items())
        + f"; the transfer spent {used:.2f} (the streamer's transfer phase, the runtime's whole stream)"
    )
    if room > 0:
        results["goal_transfer_mib_per_s"] = size / room / 2**20
        results["goal_cpu_ms_per_mib"] = cores * 1000 / results["goal_transfer_mib_per_s"]
        print(
            f"FIGURE stream_goal {GOAL} of this run's raw GET needs the transfer at "
            f"{results['goal_transfer_mib_per_s']:.0f} MiB/s: at most {results['goal_cpu_ms_per_mib']:.2f} "
            f"CPU ms/MiB for the streamer, the runtime and the S3 server together on {cores} cores"
        )
    else:
        print(f"FIGURE stream_goal {GOAL} of this run's raw GET: out of reach, the time before the transfer is longer")
    if "before" in trees:
        results["stream_after_over_before"] = median("before", "seconds") / median("after", "seconds")
        print(f"RATIO s3_stream_after_over_before {results['stream_after_over_before']:.2f}")
    out = ROOT / "build" / "bench" / "stream.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "samples": samples}, indent=2))


if __name__ == "__main__":
    main()

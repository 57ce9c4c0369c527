"""Veracruz transport benchmark: our client's throughput writing 64 MiB into a runtime, with TLS
records batched into posts under the 256 KiB body limit, versus one post per 16 KiB TLS record
(the original veracruz-client's pattern), side by side in one run against the same runtime.

    make bench            (or: .venv/bin/python bench/transport.py)

Prints ``RATIO``/``FIGURE`` lines and writes build/bench/transport.json.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the imports below (noqa: E402) need the checkout on the path

from bench.harness import policies  # noqa: E402
from bench.harness.waiting import free_port  # noqa: E402
from ipoc.certs import Identity, new_identity  # noqa: E402
from ipoc.client import VeracruzClient  # noqa: E402
from ipoc.policy import parse_full_policy  # noqa: E402
from ipoc.wire import carrier  # noqa: E402
from runtime.attestation.service import make_server  # noqa: E402
from runtime.measurement import measurement  # noqa: E402
from runtime.server import build_server  # noqa: E402

SIZE = 64 * 1024 * 1024
RECORD = 16 * 1024 + 22  # one TLS 1.3 record with its header and tag, as the original client posts them


def write_once(policy: str, identity: Identity, post_bytes: int) -> tuple[float, int]:
    with VeracruzClient(policy, identity.certificate, identity.private_key, post_bytes=post_bytes) as client:
        carrier = client._carrier  # the HTTP carrier counts its POSTs; open (not None) inside the `with`
        assert carrier is not None
        posts_before = carrier.posts
        started = time.perf_counter()
        client.stream_file("/input/blob", io.BytesIO(os.urandom(SIZE)), chunk_size=1 << 20)
        elapsed = time.perf_counter() - started
        posts = carrier.posts - posts_before
    return elapsed, posts


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ipoc-bench-transport-"))
    proxy = make_server("127.0.0.1", 0, home / "attestation", home / "platform")
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    writer = new_identity("bench-writer")
    text = policies.full_policy(
        policies.vaas_policy([(writer, [{"file_name": "/input/", "rights": 534084}])]),
        proxy_url=f"127.0.0.1:{proxy.server_address[1]}",
        proxy_cert=proxy.state.ca.certificate_pem,
        measurement=measurement(),
        port=free_port(),
    )
    server, scratch = build_server(
        parse_full_policy(text), platform_dir=home / "platform", measurement=measurement(), scratch_parent=home
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    batched_budget = carrier.MAX_RAW_PER_POST
    try:
        batched, batched_posts = write_once(text, writer, batched_budget)
        per_record, record_posts = write_once(text, writer, RECORD)
    finally:
        server.shutdown()
        proxy.shutdown()
    results = {
        "transport_batched_mib_per_s": SIZE / batched / 2**20,
        "transport_per_record_mib_per_s": SIZE / per_record / 2**20,
        "transport_batched_over_per_record": per_record / batched,
        "transport_batched_posts": batched_posts,
        "transport_per_record_posts": record_posts,
    }
    print(
        f"FIGURE transport_batched_throughput {results['transport_batched_mib_per_s']:.1f} MiB/s "
        f"({batched_posts} posts)"
    )
    print(
        f"FIGURE transport_per_record_throughput {results['transport_per_record_mib_per_s']:.1f} MiB/s "
        f"({record_posts} posts)"
    )
    print(f"RATIO transport_batched_over_per_record {results['transport_batched_over_per_record']:.2f}")
    out = ROOT / "build" / "bench" / "transport.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

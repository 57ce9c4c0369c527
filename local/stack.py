"""The embedded deployment: everything `ipoc local up` runs, in one process.

moto's server (S3, DynamoDB, the Step Functions interpreter), the tables and
bucket the AWS deployment creates, the proxy attestation service, and CCFaaS,
VaaS and the S3 streamer on the seed's ports, each behind the API Gateway
adapter. The handlers are the same code that runs in Lambda: only their
environment (``AWS_ENDPOINT_URL`` pointing at moto, the local backend) differs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from ipoc.paths import ipoc_home
from local.apigw import LOCAL_ADMIN, principal_arn

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"
REGION = "us-east-1"
INPUT_BUCKET = "ipoc-local-inputs"


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    ccfaas_port: int = 5010
    vaas_port: int = 5000
    s3stream_port: int = 5020
    proxy_port: int = 3010
    moto_port: int = 5055
    runtime_port_min: int = 3014
    runtime_port_max: int = 3023
    reaper_interval: float = 10.0
    home: Path = field(default_factory=ipoc_home)

    @property
    def local_dir(self) -> Path:
        return self.home / "local"

    @property
    def runtimes_dir(self) -> Path:
        return self.local_dir / "runtimes"

    @property
    def state_file(self) -> Path:
        return self.local_dir / STATE_FILE


class PortInUse(RuntimeError):
    pass


TABLE_NAMES = {"functions": "ipoc-functions", "instances": "ipoc-instances", "slots": "ipoc-slots"}
ARTIFACTS_BUCKET = "ipoc-artifacts"


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self._stoppers: list[tuple[str, Any]] = []
        self._stopped = threading.Event()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start every part; on any failure stop what already started and re-raise."""
        config = self.config
        config.local_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        try:
            self._start_moto()
            self._create_resources()
            ca_pem = self._start_proxy()
            self._configure_handlers(ca_pem)
            self._register_workflow()
            self._start_apis()
            self._start_reaper()
            from lambdas.vaas.backends.local import start_pool
            start_pool()  # IPOC_WARM_POOL runtimes attest in the background; stop_pool in stop()
        except BaseException:
            self.stop()
            raise
        description = self.describe()
        tmp = config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(description, indent=2))
        tmp.replace(config.state_file)
        return description

    def wait(self) -> None:
        self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    def stop(self) -> None:
        """Stop runtimes first (they need nothing else), then the servers, newest first."""
        from lambdas.vaas.backends.local import running_ports, stop_pool, stop_runtime

        stop_pool(self.config.runtimes_dir)  # first: no refill may start a runtime while the slots stop
        for port in running_ports(self.config.runtimes_dir):
            try:
                stop_runtime(self.config.runtimes_dir, port)
            except Exception:  # keep stopping the rest
                log.exception("could not stop the runtime on port %d", port)
        while self._stoppers:
            name, stop = self._stoppers.pop()
            try:
                stop()
            except Exception:
                log.exception("could not stop %s", name)
        try:
            self.config.state_file.unlink()
        except FileNotFoundError:
            pass
        self._stopped.set()

    # -- parts -----------------------------------------------------------------

    def _check_ports(self) -> None:
        """Fail before starting anything when a port is taken (moto would hang on a busy port)."""
        config = self.config
        wanted = {
            "CCFaaS": config.ccfaas_port, "VaaS": config.vaas_port, "S3 streamer": config.s3stream_port,
            "proxy attestation": config.proxy_port, "moto (AWS)": config.moto_port,
        }
        for name, port in wanted.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((config.host, port))
                except OSError:
                    raise PortInUse(f"port {port} for {name} is in use; is a stack already running (ipoc local status)?") from None

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        from local import moto_patches

        moto_patches.apply_all()  # atomic conditional writes and safe concurrent PUTs, as in AWS
        server = ThreadedMotoServer(ip_address=self.config.host, port=self.config.moto_port, verbose=False)
        server.start()
        self._stoppers.append(("moto", server.stop))
        endpoint = f"http://{self.config.host}:{self.config.moto_port}"
        # Step Functions executions run for real in moto's interpreter (the lifecycle workflow needs it).
        requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
        os.environ.update({
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
        })
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)

    def _create_resources(self) -> None:
        from lambdas.shared.tables import FUNCTIONS, INSTANCES, SLOTS

        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for spec in (FUNCTIONS, INSTANCES, SLOTS):
            dynamodb.create_table(**spec.create_table_kwargs(TABLE_NAMES[spec.logical_name]))
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (ARTIFACTS_BUCKET, INPUT_BUCKET):
            s3.create_bucket(Bucket=bucket)

    def _start_proxy(self) -> str:
        from runtime.attestation.service import make_server

        server = make_server(self.config.host, self.config.proxy_port, self.config.home / "attestation", self.config.home / "platform")
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="proxy")
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(10)

        self._stoppers.append(("proxy attestation service", stop))
        return server.state.ca.certificate_pem

    def _configure_handlers(self, ca_pem: str) -> None:
        from lambdas.shared import aws
        from lambdas.shared.config import settings
        from runtime.measurement import measurement

        config = self.config
        loader_cert, loader_key = self._program_load_identity()
        os.environ.update({
            "IPOC_FUNCTIONS_TABLE": TABLE_NAMES["functions"],
            "IPOC_INSTANCES_TABLE": TABLE_NAMES["instances"],
            "IPOC_SLOTS_TABLE": TABLE_NAMES["slots"],
            "IPOC_ARTIFACTS_BUCKET": ARTIFACTS_BUCKET,
            "IPOC_INPUTS_BUCKET": INPUT_BUCKET,
            "IPOC_ADMIN_PRINCIPALS": principal_arn(LOCAL_ADMIN),
            "IPOC_VAAS_BACKEND": "local",
            "IPOC_STATE_DIR": str(config.runtimes_dir),
            "IPOC_PORT_MIN": str(config.runtime_port_min),
            "IPOC_PORT_MAX": str(config.runtime_port_max),
            "IPOC_ENDPOINT_HOST": config.host,
            "IPOC_PROXY_URL": f"{config.host}:{config.proxy_port}",
            "IPOC_PROXY_CERT": ca_pem,
            "IPOC_RUNTIME_HASH": measurement(),
            "IPOC_PLATFORM": "linux",
            "IPOC_PROGRAM_LOAD_CERT_FILE": str(loader_cert),
            "IPOC_PROGRAM_LOAD_KEY_FILE": str(loader_key),
            "MOTO_PORT": str(config.moto_port),
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_SERVICE_NAME": "ipoc-local",
        })
        settings.cache_clear()
        aws.reset()

    def _program_load_identity(self) -> tuple[Path, Path]:
        """CCFaaS's program-load key and certificate, made once per IPOC_HOME and kept private."""
        from ipoc.certs import new_identity

        directory = self.config.local_dir / "program-load"
        cert, key = directory / "program-load.crt", directory / "program-load.key"
        if not (cert.exists() and key.exists()):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            new_identity("ipoc-program-load", days=3650).write(cert, key)
        return cert, key

    def _register_workflow(self) -> None:
        from local.workflow import register

        arn = register(boto3.client("iam", region_name=REGION), boto3.client("lambda", region_name=REGION),
                       boto3.client("stepfunctions", region_name=REGION))
        os.environ["IPOC_STATE_MACHINE_ARN"] = arn
        self.state_machine_arn = arn

    def _start_reaper(self) -> None:
        from lambdas.ccfaas.lifecycle import Lifecycle
        from lambdas.ccfaas.reaper import Reaper

        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.config.reaper_interval):
                try:
                    Reaper(Lifecycle.from_settings()).run()
                except Exception:  # the next round tries again
                    log.exception("reaper round failed")

        thread = threading.Thread(target=loop, daemon=True, name="reaper")
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(30)

        self._stoppers.append(("reaper", halt))

    def _start_apis(self) -> None:
        from lambdas.ccfaas.handler import lambda_handler as ccfaas
        from lambdas.openapi import api_document
        from lambdas.s3stream.handler import lambda_handler as s3stream
        from lambdas.vaas.handler import lambda_handler as vaas
        from local.adapter import ApiServer

        config = self.config
        for name, port, handler in (
            ("ccfaas", config.ccfaas_port, ccfaas),
            ("vaas", config.vaas_port, vaas),
            ("s3stream", config.s3stream_port, s3stream),
        ):
            document = api_document(name)
            server = ApiServer(config.host, port, name, handler, lambda document=document: document)
            server.start()
            self._stoppers.append((f"{name} API", server.stop))

    # -- description -------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        config = self.config
        base = f"http://{config.host}"
        return {
            "pid": os.getpid(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "endpoints": {
                "ccfaas": f"{base}:{config.ccfaas_port}",
                "vaas": f"{base}:{config.vaas_port}",
                "s3stream": f"{base}:{config.s3stream_port}",
                "proxy": f"{base}:{config.proxy_port}",
                "aws": f"{base}:{config.moto_port}",
            },
            "tables": dict(TABLE_NAMES),
            "state_machine": getattr(self, "state_machine_arn", None),
            "buckets": {"artifacts": ARTIFACTS_BUCKET, "inputs": INPUT_BUCKET},
            "runtime_ports": [config.runtime_port_min, config.runtime_port_max],
            "home": str(config.home),
            "ca_cert": str(config.home / "attestation" / "ca-cert.pem"),
            "config": {k: str(v) for k, v in asdict(config).items()},
        }


def read_state(home: Path | None = None) -> dict[str, Any] | None:
    """The running stack's description, or None when no stack is up (a stale file is ignored)."""
    path = (home or ipoc_home()) / "local" / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return state

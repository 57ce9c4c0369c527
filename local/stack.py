"""The embedded deployment: everything `ipoc local up` runs.

The stack process serves the proxy attestation service and CCFaaS, VaaS and
the S3 streamer on the seed's ports, each behind the API Gateway adapter; the
local AWS (moto's server: S3, DynamoDB, the Step Functions interpreter, with
the tables, buckets and workflow the AWS deployment creates) runs in a process
of its own (``local.aws_server``, with the workflow's tasks and the reaper) and keeps its state under
``$IPOC_HOME/local/state`` (``local.persistence``). It is started first, and
both processes start side by side (its imports and restore; the proxy, the
handlers' imports and clients here); its warm-up waits until the stack is ready. The handlers are the same
code that runs in Lambda: only their settings (the local backend, this stack's
tables and ports) and AWS endpoint (``AWS_ENDPOINT_URL`` pointing at moto)
differ. The handlers in this process get their :class:`~lambdas.shared.config.Settings`
given (``config.use``), not through this process's environment; the local AWS
process, where the workflow's task Lambdas run, gets the same settings as its
environment (``Settings.to_environment``), as a Lambda does. At start, what a
previous stack left running is ended (``local.reconcile``).
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ipoc.paths import ipoc_home
from lambdas.shared import config as settings_config
from lambdas.shared.config import Settings
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
    fresh: bool = False  # delete the kept state before starting
    api_workers: int | None = None  # processes serving the APIs (0: the stack process; None: one per core)
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

    @property
    def state_dir(self) -> Path:
        return self.local_dir / "state"


class PortInUse(RuntimeError):
    pass


class StartFailed(RuntimeError):
    """A part of the stack could not start; the message says which and why."""


AWS_READY_TIMEOUT = 60.0


TABLE_NAMES = {"functions": "ipoc-functions", "instances": "ipoc-instances", "slots": "ipoc-slots"}
# The settings the stack gives its handlers itself, whatever its environment says (it reads the others from it).
STACK_SETS = (
    "functions_table",
    "instances_table",
    "slots_table",
    "artifacts_bucket",
    "inputs_bucket",
    "admin_principals",
    "backend",
    "state_dir",
    "port_min",
    "port_max",
    "endpoint_host",
    "proxy_url",
    "proxy_cert",
    "runtime_hash",
    "platform",
    "program_load_cert_file",
    "program_load_key_file",
    "program_load_secret_arn",  # empty: the identity is the files above, never a secret of the developer's AWS
    "state_machine_arn",  # the workflow the local AWS made
)
ARTIFACTS_BUCKET = "ipoc-artifacts"


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        # What the developer's environment sets (IPOC_MAX_TTL, IPOC_WARM_POOL...); the stack sets the rest.
        self.settings = Settings.from_environment()
        self._stoppers: list[tuple[str, Any]] = []
        self._stopped = threading.Event()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start every part; on any failure stop what already started and re-raise."""
        started = time.perf_counter()
        config = self.config
        config.local_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        try:
            aws = self._spawn_aws()  # first: its imports are the longest part of the start
            ca_pem = self._start_proxy()
            self._configure_handlers(ca_pem)
            self._give_settings(aws)
            from local.reconcile import reconcile_records, stop_leftover_runtimes

            self.reconciled: dict[str, Any] = {"stopped_runtimes": stop_leftover_runtimes(config.runtimes_dir)}
            handlers = self._import_handlers()  # while the local AWS restores its state
            self.aws_ready = self._wait_aws(aws)
            held = self.aws_ready.get("held")
            if held is None or any(held.values()):  # else nothing to end: no scans, no clients made for them
                from lambdas.shared.stores import InstanceStore, SlotStore

                self.reconciled.update(reconcile_records(SlotStore(), InstanceStore()))
            else:
                self.reconciled.update({"freed_slots": [], "failed_instances": []})
            self._start_apis(handlers)  # forks the API workers: before this process starts any thread
            self._serve_proxy()
        except BaseException:
            self.stop()
            raise
        self.start_cost = {
            "seconds": round(time.perf_counter() - started, 3),
            "cpu_seconds": round(time.process_time(), 3),
        }
        description = self.describe()
        tmp = config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(description, indent=2))
        tmp.replace(config.state_file)
        self._go_ahead(aws)
        return description

    def wait(self) -> None:
        self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    def stop(self) -> None:
        """Stop runtimes first (they need nothing else), then the servers, newest first."""
        from local.runtimes import running_ports, stop_pool, stop_runtime

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
            "CCFaaS": config.ccfaas_port,
            "VaaS": config.vaas_port,
            "S3 streamer": config.s3stream_port,
            "proxy attestation": config.proxy_port,
            "moto (AWS)": config.moto_port,
        }
        for name, port in wanted.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((config.host, port))
                except OSError:
                    raise PortInUse(
                        f"port {port} for {name} is in use; is a stack already running (ipoc local status)?"
                    ) from None

    def _spawn_aws(self) -> subprocess.Popen[bytes]:
        """Start the local AWS process (it restores the kept state); point this process's AWS SDK at it (the
        SDK's own configuration: this process is a client too, see reconcile). The task Lambdas' settings
        follow on its stdin (``_give_settings``): it imports moto meanwhile."""
        config = self.config
        sdk = {
            "AWS_ENDPOINT_URL": f"http://{config.host}:{config.moto_port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
        }
        os.environ.update(sdk)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        environment = {
            **os.environ,
            "MOTO_PORT": str(config.moto_port),
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_SERVICE_NAME": "ipoc-local",
        }
        command = [
            sys.executable,
            "-m",
            "local.aws_server",
            "--host",
            config.host,
            "--port",
            str(config.moto_port),
            "--state-dir",
            str(config.state_dir),
            "--parent",
            str(os.getpid()),
            "--tables",
            json.dumps(TABLE_NAMES),
            "--buckets",
            f"{ARTIFACTS_BUCKET},{INPUT_BUCKET}",
            "--reaper-interval",
            str(config.reaper_interval),
            "--from-stack",
            *(["--fresh"] if config.fresh else []),
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.PIPE, env=environment)
        self._stoppers.append(("local AWS", lambda: _terminate(process)))
        from lambdas.shared import aws

        aws.reset()
        return process

    def _give_settings(self, process: subprocess.Popen[bytes]) -> None:
        """The task Lambdas' environment, as a Lambda's: the handlers' settings (with the SDK's, given at spawn)."""
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(self.settings.to_environment()).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: _wait_aws says why

    def _go_ahead(self, process: subprocess.Popen[bytes]) -> None:
        """The stack is ready: the local AWS may start its warm-up (the warm pool, the workflow's parse)."""
        from local.aws_server import GO_AHEAD

        assert process.stdin is not None
        try:
            process.stdin.write(GO_AHEAD + b"\n")
            process.stdin.close()
        except BrokenPipeError:
            log.warning("the local AWS exited right after the start; `ipoc local status` tells more")

    def _wait_aws(self, process: subprocess.Popen[bytes]) -> dict[str, Any]:
        """The local AWS's ready line (or why it did not start)."""
        assert process.stdout is not None
        lines: list[bytes] = []
        stdout = process.stdout
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(AWS_READY_TIMEOUT)
        line = lines[0] if lines else b""
        try:
            ready = json.loads(line)
        except ValueError:
            ready = {}
        if not ready.get("ready"):
            _terminate(process)
            reason = ready.get("error") or (
                f"it exited with {process.returncode}; see the log above"
                if line or process.poll() is not None
                else f"it did not answer within {AWS_READY_TIMEOUT:g} s"
            )
            raise StartFailed(f"the local AWS (moto) did not start: {reason}")
        self.state_machine_arn = ready["state_machine"]
        self.settings = replace(self.settings, state_machine_arn=self.state_machine_arn)
        settings_config.use(self.settings)
        return ready

    def _start_proxy(self) -> str:
        # Certificates outlive the longest instance plus a warm runtime's wait (clients refuse an expired one, and the
        # warm pool hands out only runtimes certified past IPOC_MAX_TTL); Veracruz's own proxy certifies for a day.
        from local.runtimes import INSTANCE_MARGIN, WARM_MAX_IDLE
        from runtime.attestation.service import make_server

        validity = dt.timedelta(seconds=self.settings.max_ttl + WARM_MAX_IDLE + 2 * INSTANCE_MARGIN)
        server = make_server(
            self.config.host,
            self.config.proxy_port,
            self.config.home / "attestation",
            self.config.home / "platform",
            cert_validity=validity,
        )
        self._proxy = server
        self._stoppers.append(("proxy attestation service", server.server_close))
        return server.state.ca.certificate_pem

    def _serve_proxy(self) -> None:
        server = self._proxy
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="proxy")
        thread.start()

        def stop() -> None:
            server.shutdown()
            thread.join(10)

        self._stoppers.append(("proxy attestation service thread", stop))

    def _configure_handlers(self, ca_pem: str) -> None:
        """The handlers' settings: this stack's tables, buckets, ports, proxy and identities, given to the
        handlers this process runs (and, as its environment, to the local AWS process's task Lambdas)."""
        from runtime.measurement import measurement

        config = self.config
        loader_cert, loader_key = self._program_load_identity()
        own: dict[str, Any] = dict(
            functions_table=TABLE_NAMES["functions"],
            instances_table=TABLE_NAMES["instances"],
            slots_table=TABLE_NAMES["slots"],
            artifacts_bucket=ARTIFACTS_BUCKET,
            inputs_bucket=INPUT_BUCKET,
            admin_principals=(principal_arn(LOCAL_ADMIN),),
            backend="local",
            state_dir=str(config.runtimes_dir),
            port_min=config.runtime_port_min,
            port_max=config.runtime_port_max,
            endpoint_host=config.host,
            proxy_url=f"{config.host}:{config.proxy_port}",
            proxy_cert=ca_pem,
            runtime_hash=measurement(),
            platform="linux",
            program_load_cert_file=str(loader_cert),
            program_load_key_file=str(loader_key),
            program_load_secret_arn="",
        )
        # STACK_SETS (docs/settings.md) names what the stack sets: these, and the workflow's ARN once it is made
        assert set(own) | {"state_machine_arn"} == set(STACK_SETS), "keep STACK_SETS what the stack sets"
        self.settings = replace(self.settings, **own)
        self._given_settings = settings_config.use(self.settings)
        self._stoppers.append(("the handlers' settings", lambda: settings_config.use(self._given_settings)))

    def _program_load_identity(self) -> tuple[Path, Path]:
        """CCFaaS's program-load key and certificate, made once per IPOC_HOME and kept private."""
        from ipoc.certs import new_identity

        directory = self.config.local_dir / "program-load"
        cert, key = directory / "program-load.crt", directory / "program-load.key"
        if not (cert.exists() and key.exists()):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            new_identity("ipoc-program-load", days=3650).write(cert, key)
        return cert, key

    @staticmethod
    def _import_handlers() -> dict[str, Any]:
        from local import runtimes
        from local.dynamodb_transport import install_for_handlers
        from local.powertools_patches import thread_local_requests

        thread_local_requests()  # the adapter's threads are concurrent invocations, each with its own request
        install_for_handlers()  # their DynamoDB reads to the local AWS over kept sockets, not urllib3
        # VaaS's API is served here (and by forked workers): IPOC_VAAS_BACKEND=local is this backend.
        runtimes.register()
        from lambdas.ccfaas.handler import lambda_handler as ccfaas
        from lambdas.s3stream.handler import lambda_handler as s3stream
        from lambdas.vaas.handler import lambda_handler as vaas

        for module in ("ccfaas", "vaas", "s3stream"):  # their logs name this stack (a Lambda's, its function)
            sys.modules[f"lambdas.{module}.handler"].logger.append_keys(service="ipoc-local")
        return {"ccfaas": ccfaas, "vaas": vaas, "s3stream": s3stream}

    def _start_apis(self, handlers: dict[str, Any]) -> None:
        """Bind the three APIs here, then serve them from ``api_workers`` forked processes sharing the sockets.

        Each process serves requests with threads (each thread's request its own:
        ``local.powertools_patches``); several processes use every core. Forked after the
        imports, a worker starts in milliseconds.
        """
        from lambdas.openapi import api_document
        from local.adapter import ApiServer

        config = self.config
        servers = []
        for name, port in (
            ("ccfaas", config.ccfaas_port),
            ("vaas", config.vaas_port),
            ("s3stream", config.s3stream_port),
        ):
            document = functools.cache(functools.partial(api_document, name))  # built on first GET /openapi.json
            server = ApiServer(config.host, port, name, handlers[name], document)
            servers.append(server)
            self._stoppers.append((f"{name} API socket", server.server_close))
        workers = default_api_workers() if config.api_workers is None else config.api_workers
        config.api_workers = workers  # what `ipoc local status --json` shows
        # The imports (botocore's models, Powertools, the handlers) live as long as the process: frozen, the
        # collector no longer walks them (a full collection took 80-90 ms under 50 readers, every request in
        # the process waiting), and forked workers share their pages instead of touching them.
        gc.freeze()
        if workers <= 0:
            for server in servers:
                server.start()
                self._stoppers.append((f"{server.name} API", server.stop))
            return
        for server in servers:
            server.share_among(workers)
        self.worker_pids = [_fork_worker(servers, index) for index in range(workers)]
        self._stoppers.append(("API workers", lambda: _stop_workers(self.worker_pids)))

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
            "aws_pid": (getattr(self, "aws_ready", None) or {}).get("pid"),
            "api_worker_pids": getattr(self, "worker_pids", []),
            "state_dir": str(config.state_dir),
            "restored": (getattr(self, "aws_ready", None) or {}).get("restored"),
            "reconciled": getattr(self, "reconciled", None),
            # until ready: this process's wall and CPU time (its CPU since it was started or forked), the local AWS's
            "start": {
                **getattr(self, "start_cost", {}),
                "aws_seconds": (getattr(self, "aws_ready", None) or {}).get("seconds"),
                "aws_cpu_seconds": (getattr(self, "aws_ready", None) or {}).get("cpu_seconds"),
            },
            "tables": dict(TABLE_NAMES),
            "state_machine": getattr(self, "state_machine_arn", None),
            "buckets": {"artifacts": ARTIFACTS_BUCKET, "inputs": INPUT_BUCKET},
            "runtime_ports": [config.runtime_port_min, config.runtime_port_max],
            "home": str(config.home),
            "ca_cert": str(config.home / "attestation" / "ca-cert.pem"),
            "config": {k: str(v) for k, v in asdict(config).items()},
        }


def default_api_workers() -> int:
    """One API process per core the stack may use; none (the stack process serves) on a single core.

    A process runs Python on one core at a time (the GIL): with 50 clients reading, one process served
    ~570 reads/s here and two ~1,200 (2 cores, ``bench/control_plane.py --only reads``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


def _fork_worker(servers: list[Any], index: int) -> int:
    """The ``index``-th process serving ``servers`` (already listening) until SIGTERM, or until the stack process
    dies."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        import signal

        from lambdas.shared import aws
        from local.aws_server import die_with_parent

        die_with_parent(parent)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the stack, which stops its workers
        aws.reset()  # no connection pools shared with the parent
        for server in servers:
            server.serve_as(index)
        threading.Event().wait()
    except BaseException:
        log.exception("API worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)


def _stop_workers(pids: list[int], timeout: float = 10.0) -> None:
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)


def _terminate(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def read_state(home: Path | None = None) -> dict[str, Any] | None:
    """The running stack's description, or None when no stack is up (a stale file is ignored)."""
    path = (home or ipoc_home()) / "local" / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    try:
        pid = int(state["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    return state if process_alive(pid) else None


def process_alive(pid: int) -> bool:
    """Alive and not a zombie (a killed stack stays a zombie until its parent reaps it)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stack_status(home: Path | None = None) -> tuple[str, str, dict[str, Any] | None]:
    """("stopped" | "running" | "unhealthy", the reason, the stack's description when it has one)."""
    from ipoc.wire.carrier import port_open

    path = (home or ipoc_home()) / "local" / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return "stopped", "no local stack is running", None
    except (OSError, json.JSONDecodeError) as exc:
        return "stopped", f"{path} is unreadable ({exc}); `ipoc local up` starts a stack", None
    pid = state.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        return (
            "stopped",
            f"the stack process {pid} is gone (it crashed or was killed); `ipoc local up` starts it again",
            None,
        )
    problems = []
    aws_pid = state.get("aws_pid")
    if isinstance(aws_pid, int) and not process_alive(aws_pid):
        problems.append(f"the local AWS process {aws_pid} is gone")
    for name, url in state.get("endpoints", {}).items():
        host, _, port = url.rpartition("//")[2].rpartition(":")
        if not port_open(host, int(port), timeout=1):
            problems.append(f"{name} at {url} does not accept connections")
    if problems:
        return "unhealthy", "; ".join(problems) + "; `ipoc local down` then `ipoc local up` restarts it", state
    return "running", f"pid {pid}, every endpoint answers", state

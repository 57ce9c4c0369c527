"""The local AWS: moto's server in a process of its own, with the stack's durable state.

``ipoc local up`` starts it (``python -m local.aws_server --from-stack``) first of all, so that its
imports overlap the stack's and moto's request handling does not share a GIL with the API adapters.
It restores the kept state (``local.persistence``), creates the tables and buckets the AWS
deployment creates, then prints one JSON line on stdout (``{"ready": true, ...}``), registers
the lifecycle workflow (Step Functions requests wait for it: :class:`Workflow`) and serves until
SIGTERM. It dies with the stack process (``PR_SET_PDEATHSIG``): a stack killed with ``kill -9``
leaves no moto holding its port. The workflow's task Lambdas run here, in process
(``local.lambda_runner``), with the environment the stack gave this process: its settings come
on stdin (they need the proxy's CA, made while this process imports moto). The warm-up (the warm
pool, the task Lambda's imports and clients, the workflow's parse: seconds of CPU) starts when
the stack says it is ready, on the same pipe, so that it does not slow the start down.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from lambdas.shared.tables import TableSpec

REGION = "us-east-1"
GO_AHEAD = b"warm-up"  # the stack's line that starts the warm-up (``--from-stack``)
log = logging.getLogger(__name__)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent (the stack) dies, however it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        log.warning("cannot ask to die with the stack process (no prctl): stop this process with the stack")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def create_table(backend: Any, spec: TableSpec, name: str) -> None:
    """Create table ``name`` as ``spec`` says, through moto's DynamoDB ``backend`` (what its CreateTable does)."""
    kwargs = spec.create_table_kwargs(name)
    backend.create_table(
        kwargs["TableName"],
        schema=kwargs["KeySchema"],
        throughput=None,
        attr=kwargs["AttributeDefinitions"],
        global_indexes=kwargs.get("GlobalSecondaryIndexes"),
        indexes=None,
        streams=None,
        billing_mode=kwargs["BillingMode"],
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )


def create_resources(tables: dict[str, str], buckets: list[str]) -> None:
    """The tables and buckets the AWS deployment creates (those the restore did not bring back); the
    workflow follows in the background (:class:`Workflow`).

    Made through moto's backends in this process, not its HTTP API: no boto3 clients to build and
    no per-service web app to set up before the stack is ready (the quickest part of ``up``).
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    from lambdas.shared.tables import ALL_TABLES

    dynamodb = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    for spec in ALL_TABLES:
        create_table(dynamodb, spec, tables[spec.logical_name])
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for bucket in buckets:
        if bucket not in s3.buckets:
            s3.create_bucket(bucket, REGION)


class Workflow:
    """The lifecycle workflow, registered in a thread once this process is ready, not before: registering
    imports moto's Step Functions interpreter (ANTLR's parser) and makes the IAM and Lambda backends, about
    a third of this process's CPU until ready, which the stack would otherwise wait for. Its ARN is known
    before (moto's, from the name), so the stack's settings have it; a Step Functions request waits until
    the workflow is registered (:meth:`wait`: the keep-alive handler calls it), so an instance created right
    after ``up`` starts its execution as before."""

    TIMEOUT = 120.0

    def __init__(self) -> None:
        self._registered = threading.Event()
        self.arn = ""

    def expected_arn(self) -> str:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.utilities.utils import get_partition

        from local.workflow import STATE_MACHINE

        return f"arn:{get_partition(REGION)}:states:{REGION}:{DEFAULT_ACCOUNT_ID}:stateMachine:{STATE_MACHINE}"

    def register_in_background(self) -> str:
        """Start registering; return the ARN it will have."""
        self.arn = self.expected_arn()
        threading.Thread(target=self.register, daemon=True, name="workflow-register").start()
        return self.arn

    def register(self) -> None:
        from local.workflow import register

        try:
            # the executions run in this process (warmed up by WarmUp)
            arn = register(_Iam(), _Lambda(), STEP_FUNCTIONS)
            if arn != self.arn:
                log.error(
                    "the lifecycle workflow is %s, not %s as the stack was told: instances cannot start", arn, self.arn
                )
        except Exception:
            log.exception("the lifecycle workflow could not be registered: instances cannot start")
        finally:
            self._registered.set()

    def wait(self) -> bool:
        """Until it is registered (or its registration failed); False: not within :attr:`TIMEOUT`."""
        return self._registered.wait(self.TIMEOUT)

    @property
    def registered(self) -> bool:
        return self._registered.is_set()


WORKFLOW = Workflow()


class _Iam:
    """The calls ``local.workflow.register`` makes, answered by moto's backends as its HTTP API would."""

    def create_role(self, RoleName: str, AssumeRolePolicyDocument: str) -> dict[str, Any]:  # noqa: N803
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iam.models import iam_backends

        role = iam_backends[DEFAULT_ACCOUNT_ID]["global"].create_role(
            RoleName, AssumeRolePolicyDocument, "/", None, "", [], None
        )
        return {"Role": {"Arn": role.arn}}


class _Lambda:
    def create_function(self, **spec: Any) -> dict[str, Any]:
        import base64

        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        spec["Code"] = {"ZipFile": base64.b64encode(spec["Code"]["ZipFile"]).decode()}
        function = lambda_backends[DEFAULT_ACCOUNT_ID][REGION].create_function(spec)
        return {"FunctionArn": function.function_arn}


class _StepFunctions:
    definition = ""

    def create_state_machine(self, name: str, roleArn: str, definition: str) -> dict[str, Any]:  # noqa: N803
        """Created without the interpreter's parse (the slowest step of ``up``: ANTLR's first parse builds
        its tables); ``check_definition`` parses it once the stack is ready, which also warms the parser
        for the first execution. The definition is the repository's own, checked by its tests."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.stepfunctions.models import StepFunctionBackend
        from moto.stepfunctions.responses import get_backend

        # the backend moto's API uses: with execute_state_machine on, the one with the interpreter
        backend = get_backend(DEFAULT_ACCOUNT_ID, REGION)
        machine = StepFunctionBackend.create_state_machine(backend, name, definition, roleArn)
        self.definition = definition
        return {"stateMachineArn": machine.arn}

    def check_definition(self) -> None:
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        try:
            StepFunctionsParserBackend._validate_definition(definition=self.definition)
        except Exception:
            log.exception("the lifecycle workflow's definition does not parse: instances cannot start")


def left_held(tables: dict[str, str]) -> dict[str, int] | None:
    """What a previous stack left held, that the stack's reconciliation ends (``local.reconcile``): slots taken
    and live instances, counted in the restored tables. When both are 0 the stack skips the reconciliation's
    scans (and the clients they need) before it is ready. None: this process does not hold those tables."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from lambdas.shared.stores import InstanceStore

    if "slots" not in tables or "instances" not in tables:
        return None
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    live = {status.value for status in InstanceStore.LIVE}
    instances = backend.get_table(tables["instances"]).all_items()
    return {
        "slots": len(backend.get_table(tables["slots"]).all_items()),
        "live_instances": sum(1 for item in instances if getattr(item.attrs.get("status"), "value", None) in live),
    }


def keep_alive_server(host: str, port: int) -> Any:
    """moto's WSGI app behind werkzeug's threaded server, with HTTP/1.1 keep-alive.

    werkzeug's development server closes every connection after one response, so each
    request a handler made through boto3 paid a TCP connect here and a new thread (and
    waited 10 ms for stray bytes before closing). This handler keeps the connection for
    the next request: it reads exactly the body the request declared (or its chunks),
    drains what the app left unread, and answers with a Content-Length.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import ThreadedWSGIServer, make_server
    from werkzeug.wsgi import LimitedStream

    from runtime.http_body import http_date

    class KeepAliveHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = IDLE_TIMEOUT  # an idle kept-alive connection frees its thread after this
        _body: bytes | None = None  # a request's body, read before it went the WSGI app's way

        def handle_one_request(self) -> None:
            """One request. A plain GetItem (the control plane's every read) is answered here, without
            http.server's header parsing (the email parser), a WSGI environ and moto's request objects: the
            same answer, made by the same function as :func:`local.moto_patches.direct_dynamodb`'s; every
            other request (and a GetItem that function leaves to moto) goes the WSGI app's way, as before."""
            try:
                line = self.rfile.readline(65537)
                if line != b"POST / HTTP/1.1\r\n" or recorder._user_enabled:
                    self._through_app(line, None)
                    return
                head: list[bytes] = []
                while len(head) < 100:  # http.server's limit, the blank line counted (http.client._read_headers)
                    field = self.rfile.readline(65537)
                    head.append(field)
                    if field in (b"\r\n", b"\n", b"") or len(field) > 65536:
                        break
                if not self._plain_get_item(head):
                    self._through_app(line, head)
            except TimeoutError as exc:  # as http.server: an idle kept-alive connection times out
                self.log_error("Request timed out: %r", exc)
                self.close_connection = True

        def _plain_get_item(self, head: list[bytes]) -> bool:
            """Answer a plain GetItem; False: not one (its body, if read, is kept for the app)."""
            if not head or head[-1] not in (b"\r\n", b"\n"):
                return False
            fields: dict[str, str] = {}
            for raw in head[:-1]:
                name, colon, value = raw.partition(b":")
                key = name.decode("latin-1").lower()
                if not colon or key != key.strip() or key in fields:  # odd or repeated: the usual parsing decides
                    return False
                fields[key] = value.strip().decode("latin-1")
            if fields.keys() & {"origin", "expect", "transfer-encoding"}:
                return False
            target = fields.get("x-amz-target", "")
            scope = dynamodb_scope(target, fields.get("authorization", ""))
            length = fields.get("content-length", "")
            if target != "DynamoDB_20120810.GetItem" or scope is None or not length.isdigit() or not int(length):
                return False
            body = self.rfile.read(int(length))
            if len(body) < int(length):  # the client went away mid-body
                self.close_connection = True
                return True
            answer = plain_get_item_answer(body, *scope)
            if answer is None:
                self._body = body
                return False
            headers, data = answer
            self.close_connection = fields.get("connection", "").lower() == "close"
            lines = ["HTTP/1.1 200 OK", f"Date: {http_date()}"]
            lines += [f"{name}: {value}" for name, value in headers if name.lower() != "content-length"]
            lines.append(f"Content-Length: {len(data)}")
            if self.close_connection:
                lines.append("Connection: close")
            self.wfile.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + data)
            return True

        def _through_app(self, line: bytes, head: list[bytes] | None) -> None:
            """http.server's handle_one_request for a request line (and head) already read."""
            self.raw_requestline = line
            if len(line) > 65536:
                self._refuse(414)
                return
            if not line:
                self.close_connection = True
                return
            if head is not None:
                if head[-1] not in (b"\r\n", b"\n", b""):  # too many or too long header lines
                    self._refuse(431, "Line too long" if len(head[-1]) > 65536 else "Too many headers")
                    return
                real, self.rfile = self.rfile, io.BytesIO(b"".join(head))  # parse_request reads the head from it
                try:
                    parsed = self.parse_request()
                finally:
                    self.rfile = real
            else:
                parsed = self.parse_request()
            try:
                if parsed:
                    self.run_wsgi()
                    self.wfile.flush()
            finally:
                self._body = None

        def _refuse(self, status: int, message: str | None = None) -> None:
            """An error answer before the request line is parsed, as http.server sends it; the request's fields
            are blank (werkzeug's access log reads ``path``: without it the error was a dropped connection)."""
            self.requestline = self.request_version = self.command = self.path = ""
            self.close_connection = True
            self.send_error(status, message)

        def date_time_string(self, timestamp: float | None = None) -> str:
            return http_date() if timestamp is None else super().date_time_string(timestamp)

        def run_wsgi(self) -> None:
            if not WORKFLOW.registered and self.headers.get("X-Amz-Target", "").startswith("AWSStepFunctions."):
                WORKFLOW.wait()  # the workflow is registered right after ready (Workflow)
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            chunked = bool(environ.get("wsgi.input_terminated"))
            if self._body is not None:  # read already (handle_one_request)
                environ["wsgi.input"] = io.BytesIO(self._body)
            elif not chunked:
                length = int(self.headers.get("Content-Length") or 0)
                # werkzeug types the stream IO[bytes]; the socket's rfile is a BufferedIOBase (only read is used)
                environ["wsgi.input"] = LimitedStream(self.rfile, length)  # type: ignore[arg-type]
            reply: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                reply["status"], reply["headers"] = status, headers
                return lambda data: reply.setdefault("early", []).append(data)

            try:
                result = self.server.app(environ, start_response)
                try:
                    body = b"".join([*reply.get("early", []), *result])
                finally:
                    if hasattr(result, "close"):
                        result.close()
                _drain(environ["wsgi.input"])
            except (ConnectionError, TimeoutError) as exc:
                self.connection_dropped(exc, environ)
                self.close_connection = True
                return
            except Exception:
                log.exception("moto failed on %s %s", self.command, self.path)
                self.close_connection = True
                reply = {"status": "500 Internal Server Error", "headers": [("Content-Type", "text/plain")]}
                body = b"moto failed; see the local AWS log"
            code = int(reply["status"].split(" ", 1)[0])
            bodiless = self.command == "HEAD" or code in (204, 304) or 100 <= code < 200
            head = [f"HTTP/1.1 {reply['status']}", f"Date: {self.date_time_string()}"]
            for name, value in reply["headers"]:
                lowered = name.lower()
                if lowered == "content-length":
                    if self.command == "HEAD":  # HEAD tells the size of what GET would send
                        head.append(f"Content-Length: {value}")
                elif lowered not in ("connection", "transfer-encoding"):
                    head.append(f"{name}: {value}")
            if not bodiless:
                head.append(f"Content-Length: {len(body)}")
            if self.close_connection:
                head.append("Connection: close")
            # One write for the head and the body: two small writes on a kept-alive connection meet the
            # peer's delayed ACK (Nagle), and each write is a system call.
            self.wfile.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + (b"" if bodiless else body))
            self.log_request(code, len(body))

    def _drain(stream: Any) -> None:
        while stream.read(1 << 16):
            pass

    from moto.moto_api import recorder

    from local.moto_patches import direct_dynamodb, dynamodb_scope, plain_get_item_answer

    app = direct_dynamodb(DomainDispatcherApplication(create_backend_app))  # DynamoDB straight to its handler
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    assert isinstance(server, ThreadedWSGIServer)  # threaded=True
    server.daemon_threads = True
    return server


IDLE_TIMEOUT = 120.0
STEP_FUNCTIONS = _StepFunctions()


def reap(interval: float, stop: threading.Event) -> None:
    """The reaper's schedule (EventBridge in AWS). It runs here, where the workflow's tasks start the
    runtimes: a runtime this process started tells a clean shutdown (released) from a death (FAILED)."""
    from lambdas.ccfaas.lifecycle import Lifecycle
    from lambdas.ccfaas.reaper import Reaper

    while not stop.wait(interval):
        try:
            Reaper(Lifecycle.from_settings()).run()
        except Exception:  # the next round tries again
            log.exception("reaper round failed")


def serve(
    host: str,
    port: int,
    state_dir: Path | None,
    fresh: bool,
    tables: dict[str, str],
    buckets: list[str],
    reaper_interval: float | None = None,
    control: BinaryIO | None = None,
) -> None:
    """Serve until SIGTERM. ``control``: the stack's pipe (a binary stream), whose first line is the task
    Lambdas' settings (a JSON object of environment variables: the stack makes them while this process
    imports moto) and whose second line starts the warm-up; None: start it once ready."""
    from moto.core.config import default_user_config

    from local import moto_patches, runtimes

    started = time.perf_counter()
    # What the start makes (moto, boto3, botocore's models: most of this process's objects) lives as long
    # as the process; frozen (gc.freeze), the collector no longer walks it: a full collection of this
    # heap took 30-110 ms under 50 readers, every request meanwhile waiting.
    moto_patches.defer_batch_import()  # first: before anything imports moto's Step Functions
    moto_patches.apply_all()  # atomic conditional writes and safe concurrent PUTs, as in AWS
    moto_patches.cache_module_list()
    moto_patches.cache_action_names()
    moto_patches.fast_dynamodb_reads()
    runtimes.register()  # the workflow's Allocate and teardown tasks run here, with IPOC_VAAS_BACKEND=local
    if control is not None:
        line = control.readline()
        if not line:
            raise SystemExit("the stack closed its pipe before giving the settings: it stopped")
        os.environ.update(json.loads(line))
    default_user_config["stepfunctions"]["execute_state_machine"] = True  # the lifecycle workflow runs for real
    state = None
    if state_dir is not None:
        from local.persistence import DurableState

        state = DurableState.open(state_dir, REGION, fresh=fresh)
        state.attach_dynamodb()
        state.attach_s3()
    server = keep_alive_server(host, port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="moto").start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
        }
    )
    restored: dict[str, Any] = {}
    if state is not None:
        restored["objects"] = state.restore_buckets()
    create_resources(tables, buckets)
    if state is not None:
        restored["items"] = state.restore_items()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    arn = WORKFLOW.expected_arn()
    announce(
        {
            "ready": True,
            "pid": os.getpid(),
            "state_machine": arn,
            "restored": restored,
            "held": left_held(tables),
            "seconds": round(time.perf_counter() - started, 3),
            "cpu_seconds": round(time.process_time(), 3),
        }
    )
    gc.freeze()  # what start made stays: see _freeze
    WORKFLOW.register_in_background()
    if reaper_interval:
        threading.Thread(target=reap, args=(reaper_interval, stop), daemon=True, name="reaper").start()
    warm = WarmUp()
    if control is None:
        warm.start()
    else:  # once the stack is ready: until then the warm-up's CPU would delay the stack's own start
        threading.Thread(target=warm.start_when_told, args=(control,), daemon=True, name="warm-up-signal").start()
    stop.wait()
    warm.stop()
    server.shutdown()
    server.server_close()


class WarmUp:
    """What makes the first instance fast, started once the stack is ready (not before: on two cores its
    seconds of CPU would delay the stack's start, and the warm runtimes attest with the stack's proxy):
    the warm pool (``IPOC_WARM_POOL``; it lives here, beside the workflow's Allocate task that takes
    from it), then, once the workflow is registered, its warm-up (the task handler's imports and clients,
    the definition's parse) and the definition's check."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._pool: Any = None

    def start(self) -> None:
        from local import runtimes, workflow

        with self._lock:
            if self._stopped:
                return
            self._pool = runtimes.start_pool()

        def workflow_warm_up() -> None:
            if not WORKFLOW.wait() or not STEP_FUNCTIONS.definition:
                return  # its registration said why
            workflow.warm_up(STEP_FUNCTIONS.definition).join()  # one parse at a time: the check's is then quick
            STEP_FUNCTIONS.check_definition()
            gc.freeze()  # the warm-up's modules and clients too

        threading.Thread(target=workflow_warm_up, daemon=True, name="workflow-warm-up").start()

    def start_when_told(self, control: BinaryIO) -> None:
        """Start on the stack's go-ahead line; end of input (the stack stopped or died) starts nothing."""
        if control.readline().strip() == GO_AHEAD:
            self.start()

    def stop(self) -> None:
        from local import runtimes

        with self._lock:
            self._stopped = True
            if self._pool is not None:
                runtimes.stop_pool(self._pool.state_dir)


_ready_fd: int | None = None


def announce(message: dict[str, Any]) -> None:
    """The one line the stack reads (on the stdout it gave us), then that pipe is closed: nothing else may
    write to it, or a full pipe nobody reads would block this process (Lambda tasks log to stdout)."""
    global _ready_fd
    if _ready_fd is None:
        print(json.dumps(message), flush=True)
        return
    with os.fdopen(_ready_fd, "w") as ready:
        ready.write(json.dumps(message) + "\n")
    _ready_fd = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.aws_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, help="keep state here (default: in memory only)")
    parser.add_argument("--fresh", action="store_true", help="delete the kept state first")
    parser.add_argument("--parent", type=int, help="die when this process (the stack) dies")
    parser.add_argument("--tables", default="{}", help="JSON: logical name -> table name")
    parser.add_argument("--buckets", default="", help="comma-separated bucket names")
    parser.add_argument("--reaper-interval", type=float, help="seconds between reaper rounds (default: no reaper)")
    parser.add_argument(
        "--from-stack",
        action="store_true",
        help="read the settings (a JSON line) and then the go-ahead for the warm-up (a line) on stdin",
    )
    args = parser.parse_args(argv)
    global _ready_fd
    sys.stdout.flush()
    _ready_fd = os.dup(1)
    os.dup2(2, 1)  # everything printed from now on goes to the stack's log, with stderr
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s aws %(name)s: %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(
        logging.WARNING
    )  # a line per request costs throughput; the APIs log requests
    if args.parent:
        die_with_parent(args.parent)
    from local.persistence import StateLayoutError

    try:
        serve(
            args.host,
            args.port,
            args.state_dir,
            args.fresh,
            json.loads(args.tables),
            [b for b in args.buckets.split(",") if b],
            args.reaper_interval,
            sys.stdin.buffer if args.from_stack else None,
        )
    except StateLayoutError as exc:
        announce({"ready": False, "error": str(exc)})
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

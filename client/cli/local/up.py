"""``ipoc local up``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from client.cli.application import Application

READY_TIMEOUT = 120.0


def _port_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    low, sep, high = value.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or int(low) > int(high):
        raise click.BadParameter("expected MIN-MAX, e.g. 3014-3023")
    return int(low), int(high)


@click.command(short_help="Start the local stack")
@click.option("--detach", "-d", is_flag=True, help="Start in the background and return once it is ready.")
@click.option("--ccfaas-port", default=5010, show_default=True, type=click.IntRange(1, 65535))
@click.option("--vaas-port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--s3stream-port", default=5020, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--proxy-port",
    default=3010,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Proxy attestation service port.",
)
@click.option(
    "--aws-port",
    default=5055,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the local AWS (moto: S3, DynamoDB, Step Functions).",
)
@click.option(
    "--runtime-ports",
    default="3014-3023",
    show_default=True,
    callback=_port_range,
    help="Port range of runtime slots (one instance per port).",
)
@click.option(
    "--reaper-interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds between reaper rounds (dead runtimes, expired TTLs).",
)
@click.option(
    "--api-workers",
    default=0,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Processes serving the APIs (0: the stack process itself).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Start empty: delete the kept functions, artifacts and instance records first (identities and the CA stay).",
)
@click.pass_obj
def up(
    app: Application,
    detach: bool,
    ccfaas_port: int,
    vaas_port: int,
    s3stream_port: int,
    proxy_port: int,
    aws_port: int,
    runtime_ports: tuple[int, int],
    reaper_interval: float,
    api_workers: int,
    fresh: bool,
) -> None:
    """Start the local stack; it runs until Ctrl-C, SIGTERM or `ipoc local down`.

    Functions, artifacts and instance records are kept under
    $IPOC_HOME/local/state and survive `ipoc local down`/`up` and a crash;
    instances that were live end FAILED ("the local stack restarted").
    Handlers are the Lambda code itself, invoked with the events API Gateway
    would send; the local user is an administrator (send another name in the
    X-Ipoc-Local-User header to act as someone else).
    """
    from ipoc.paths import ipoc_home
    from local.stack import LocalStack, PortInUse, StackConfig, StartFailed, read_state

    running = read_state()
    if running is not None:
        app.abort(f"a local stack is already running (pid {running['pid']}); `ipoc local down` stops it")
    options = [
        "--ccfaas-port",
        str(ccfaas_port),
        "--vaas-port",
        str(vaas_port),
        "--s3stream-port",
        str(s3stream_port),
        "--proxy-port",
        str(proxy_port),
        "--aws-port",
        str(aws_port),
        "--runtime-ports",
        f"{runtime_ports[0]}-{runtime_ports[1]}",
        "--reaper-interval",
        str(reaper_interval),
        "--api-workers",
        str(api_workers),
        *(["--fresh"] if fresh else []),
    ]
    if detach:
        _detach(app, options, ipoc_home())
        return
    config = StackConfig(
        ccfaas_port=ccfaas_port,
        vaas_port=vaas_port,
        s3stream_port=s3stream_port,
        proxy_port=proxy_port,
        moto_port=aws_port,
        runtime_port_min=runtime_ports[0],
        runtime_port_max=runtime_ports[1],
        reaper_interval=reaper_interval,
        fresh=fresh,
        api_workers=api_workers,
    )
    app.configure_logging()
    stack = LocalStack(config)
    try:
        with app.terminal.status("Starting the local stack"):
            description = stack.start()
    except (PortInUse, StartFailed) as exc:
        app.abort(str(exc))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stack.request_stop())
    from client.profiles import Profile, save

    endpoints = description["endpoints"]
    saved = save(
        Profile(
            name="local",
            kind="local",
            endpoints={k: endpoints[k] for k in ("ccfaas", "vaas", "s3stream")},
            s3_endpoint=endpoints["aws"],
        )
    )
    app.terminal.display_info(f"Profile 'local' written to {saved}")
    show_endpoints(app, description)
    app.terminal.display_info("Local stack is up; Ctrl-C or `ipoc local down` stops it.")
    stack.wait()
    app.terminal.display_info("Stopping the local stack")
    stack.stop()


def _detach(app: Application, options: list[str], home: Any) -> None:
    from local.stack import read_state

    log_path = home / "local" / "stack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # appended: the log of a stack that crashed stays readable
        child = subprocess.Popen(
            [sys.executable, "-m", "client", "local", "up", *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT
    with app.terminal.status("Starting the local stack"):
        while time.monotonic() < deadline:
            if child.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                app.abort(f"the local stack exited while starting: {tail[0]} (log: {log_path})")
            state = read_state(home)
            if state is not None and state.get("pid") == child.pid:
                show_endpoints(app, state)
                app.terminal.display_info(f"Local stack is up in the background (pid {child.pid}, log {log_path}).")
                return
            time.sleep(0.1)
    child.terminate()
    app.abort(f"the local stack did not become ready within {READY_TIMEOUT:g} s (log: {log_path})")


def show_endpoints(app: Application, state: dict[str, Any]) -> None:
    endpoints = state["endpoints"]
    rows = [
        ["CCFaaS", endpoints["ccfaas"]],
        ["VaaS", endpoints["vaas"]],
        ["S3 streamer", endpoints["s3stream"]],
        ["Proxy attestation", endpoints["proxy"]],
        ["AWS (S3, DynamoDB, Step Functions)", endpoints["aws"]],
        ["Runtime ports", "{}-{}".format(*state["runtime_ports"])],
        ["Buckets", ", ".join(state["buckets"].values())],
    ]
    app.terminal.display_table("i-PoC local stack", ["Service", "Endpoint"], rows)

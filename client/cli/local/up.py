"""``ipoc local up``."""

from __future__ import annotations

import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ipoc.limits import MAX_RUNTIME_PORTS

if TYPE_CHECKING:
    from client.cli.application import Application
    from local.stack import StackConfig

READY_TIMEOUT = 120.0


def _port_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    low, sep, high = value.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        raise click.BadParameter(f"expected MIN-MAX, e.g. 3014-3023, not {value!r}")
    first, last = int(low), int(high)
    if first > last:
        raise click.BadParameter(f"{first} is above {last}: give the lower port first ({last}-{first})")
    if first < 1 or last > 65535:
        raise click.BadParameter(f"ports are 1-65535; {value} is not within them")
    if last - first + 1 > MAX_RUNTIME_PORTS:
        raise click.BadParameter(f"{value} is {last - first + 1} ports: at most {MAX_RUNTIME_PORTS} runtime slots")
    return first, last


def _distinct_ports(services: dict[str, int], runtime_ports: tuple[int, int]) -> str | None:
    """Why the services' ports and the runtime range cannot all be listened on at once, or None."""
    seen: dict[int, str] = {}
    for name, port in services.items():
        if port in seen:
            return f"{seen[port]} and {name} are both given port {port}: each service needs its own"
        if runtime_ports[0] <= port <= runtime_ports[1]:
            return f"{name}'s port {port} is within --runtime-ports {runtime_ports[0]}-{runtime_ports[1]}"
        seen[port] = name
    return None


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
    default=None,
    type=click.IntRange(0, 64),
    help="Processes serving the APIs (0: the stack process itself)  [default: one per core, 0 on one core]",
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
    api_workers: int | None,
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
    from client.profiles import ProfileError, load_all
    from ipoc.paths import ipoc_home
    from local.stack import StackConfig, read_state

    clash = _distinct_ports(
        {
            "--ccfaas-port": ccfaas_port,
            "--vaas-port": vaas_port,
            "--s3stream-port": s3stream_port,
            "--proxy-port": proxy_port,
            "--aws-port": aws_port,
        },
        runtime_ports,
    )
    if clash:
        raise click.UsageError(clash)
    try:
        load_all()  # the stack writes its profile there once started: a file it cannot read fails now, not then
    except ProfileError as exc:
        app.abort(f"{exc}; fix or move it, then start again")
    running = read_state()
    if running is not None:
        app.abort(f"a local stack is already running (pid {running['pid']}); `ipoc local down` stops it")
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
    if detach:
        _detach(app, config, ipoc_home())
        return
    _serve(app, config)


def _serve(app: Application, config: StackConfig, ready: Callable[[], None] | None = None) -> None:
    """Run the stack in this process until it is asked to stop; ``ready`` is called once it serves (and the
    profile is written)."""
    from local.stack import LocalStack, PortInUse, StartFailed

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
    if ready is not None:
        ready()
    app.terminal.display_info(f"Profile 'local' written to {saved}")
    show_endpoints(app, description)
    app.terminal.display_info("Local stack is up; Ctrl-C or `ipoc local down` stops it.")
    stack.wait()
    app.terminal.display_info("Stopping the local stack")
    stack.stop()


READY = b"ready\n"


def _detach(app: Application, config: StackConfig, home: Path) -> None:
    """Fork the stack into a session of its own (logging to $IPOC_HOME/local/stack.log) and return once it
    says it is ready on a pipe, or say why it exited. Forked, not a new interpreter: this process's imports
    are the stack's, so the stack starts a few hundred ms sooner."""
    from local.stack import read_state

    log_path = home / "local" / "stack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    readable, writable = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the stack
        os.close(readable)
        _run_detached(app, config, log_path, writable)
    os.close(writable)
    try:
        with app.terminal.status("Starting the local stack"):
            told = _read_until(readable, time.monotonic() + READY_TIMEOUT)
    finally:
        os.close(readable)
    if told == READY:
        state = read_state(home)
        if state is None or state.get("pid") != pid:
            app.abort(f"the local stack (pid {pid}) said it was ready but does not run as described (log: {log_path})")
        show_endpoints(app, state)
        from client.profiles import config_path

        app.terminal.display_info(
            f"Local stack is up in the background (pid {pid}, log {log_path}; state under {home}; "
            f"profile 'local' in {config_path()})."
        )
        return
    if told is None:  # no word in time
        os.kill(pid, signal.SIGTERM)
        app.abort(f"the local stack did not become ready within {READY_TIMEOUT:g} s (log: {log_path})")
    os.waitpid(pid, 0)  # its end of the pipe closed without a word: it exited
    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    reason = tail[0].removeprefix("error: ")  # the stack's own abort line: said once, not "error: ... error:"
    app.abort(f"the local stack exited while starting: {reason} (log: {log_path})")


def _read_until(fd: int, deadline: float) -> bytes | None:
    """What the stack wrote on the pipe before closing it (``READY``, or nothing if it exited); None: time out."""
    received = b""
    while not received.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 64)
        if not chunk:
            break
        received += chunk
    return received


def _run_detached(app: Application, config: StackConfig, log_path: Path, ready_fd: int) -> NoReturn:
    """The forked stack: a session of its own, its output in the log, until it stops; never returns."""
    from client.cli.terminal import Terminal

    code = 1
    try:
        os.setsid()  # Ctrl-C in the terminal that started it does not reach it
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # the log of a crash stays readable
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        app.terminal = Terminal(verbosity=app.verbosity)  # for the log, not the terminal it was forked from

        def ready() -> None:
            try:
                os.write(ready_fd, READY)
            except BrokenPipeError:  # `up` was interrupted; the stack runs on, as it would have
                pass
            os.close(ready_fd)

        _serve(app, config, ready)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: S110  # nothing is left to report it to
                pass
        os._exit(code)


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

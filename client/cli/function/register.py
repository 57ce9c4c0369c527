"""``ipoc function register``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import click
import requests

from client.api import Api, ApiError
from client.cli.params import enclave_file_pair
from client.cli.policy.loading import load_json
from ipoc import schemas
from ipoc.errors import IpocError
from ipoc.function_names import check_function_name
from ipoc.limits import DIRECT_UPLOAD_LIMIT
from ipoc.path_segments import encode_path

if TYPE_CHECKING:
    from client.cli.application import Application


def _pairs(values: tuple[str, ...], option: str) -> dict[str, Path]:
    result = {}
    for value in values:
        enclave, local = enclave_file_pair(value, option)
        path = Path(local)
        if not path.is_file():
            raise click.BadParameter(f"{local} is not a file", param_hint=option)
        result[enclave] = path
    return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_FILE_OPTIONS = (
    click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    click.option(
        "--program", "programs", multiple=True, metavar="ENCLAVE_PATH=FILE", help="A program's binary. Repeatable."
    ),
    click.option("--data", "data_files", multiple=True, metavar="ENCLAVE_PATH=FILE", help="A data file. Repeatable."),
    click.option("--json", "as_json", is_flag=True, help="Print the version and the outcome of every file as JSON."),
)


_Command = TypeVar("_Command", bound=Callable[..., Any])


def _file_options(command: _Command) -> _Command:
    for option in reversed(_FILE_OPTIONS):
        command = option(command)
    return command


@click.command(short_help="Register a function and upload its programs and data files")
@_file_options
@click.pass_obj
def register(
    app: Application, policy_file: Path, programs: tuple[str, ...], data_files: tuple[str, ...], as_json: bool
) -> None:
    """Register POLICY_FILE (a function policy) and upload every file it declares.

    Everything is checked locally first: the policy's schema, that each declared
    file is given, and that each file hashes to its pi_hash. Re-running is safe:
    a function already registered with the same policy is kept, and files
    already loaded are not uploaded again. A function registered with another
    policy is left alone: `ipoc function publish` makes that policy its next version.
    A new function whose upload fails is withdrawn: nothing is left half-registered.
    """
    _publish(app, policy_file, programs, data_files, as_json, new_version=False)


@click.command(short_help="Publish a function policy as the function's next version, and upload its files")
@_file_options
@click.pass_obj
def publish(
    app: Application, policy_file: Path, programs: tuple[str, ...], data_files: tuple[str, ...], as_json: bool
) -> None:
    """Publish POLICY_FILE as version N+1 of its function (version 1 of a new one) and upload its files.

    Versions are immutable; the same policy as the latest version makes no new
    version. Files an earlier version already holds (same sha256) are shared,
    so they need not be given again; every other declared file must be. The
    `latest` alias follows the new version at once; other aliases stay where
    they are (`ipoc function alias` moves them), and running instances keep
    the version they were started from. When a file cannot be loaded (not
    given and held by no earlier version, refused, interrupted), the new
    version is withdrawn: nothing is published.
    """
    _publish(app, policy_file, programs, data_files, as_json, new_version=True)


def _publish(
    app: Application,
    policy_file: Path,
    programs: tuple[str, ...],
    data_files: tuple[str, ...],
    as_json: bool,
    *,
    new_version: bool,
) -> None:
    try:
        policy = load_json(policy_file)  # its errors name the file
    except IpocError as exc:
        app.abort(exc.message)
    try:
        schemas.validate("function", policy)
        check_function_name(policy["function"])  # before it goes into the routes' paths
    except IpocError as exc:
        app.abort(f"{policy_file}: {exc.message}")
    given = {"program": _pairs(programs, "--program"), "data_file": _pairs(data_files, "--data")}
    declared = {
        "program": {p["program_file_name"]: p["pi_hash"] for p in policy["programs"]},
        "data_file": {d["data_file"]: d["pi_hash"] for d in policy.get("data_files", [])},
    }
    for kind in declared:
        unknown = set(given[kind]) - set(declared[kind])
        missing = set(declared[kind]) - set(given[kind])
        if unknown:
            app.abort(f"{', '.join(sorted(unknown))}: not a {kind.replace('_', ' ')} of {policy['function']}", code=2)
        if missing and not new_version:
            app.abort(
                f"give the file for {', '.join(sorted(missing))} "
                f"(--{'program' if kind == 'program' else 'data'} PATH=FILE)",
                code=2,
            )
        for path, local in given[kind].items():
            actual = _sha256(local)
            if actual != declared[kind][path]:
                app.abort(f"{local} hashes to {actual}, but the policy's pi_hash for {path} is {declared[kind][path]}")

    api = app.api()
    name = policy["function"]
    outcomes = []
    try:
        if not new_version:
            try:
                if api.call("ccfaas", "GET", f"/function/{name}") != policy:
                    app.abort(
                        f"function {name} is already registered with another policy; "
                        f"`ipoc function publish` makes it version N+1 (or `ipoc function delete {name}` first)"
                    )
            except ApiError as exc:
                if exc.status != 404:
                    raise
        published = api.call("ccfaas", "POST", f"/function/{name}/versions", body=policy, expect=(200, 201))
        version = published["version"]
        try:
            if published["created"]:
                app.terminal.display_info(
                    f"Registered function {name}" if version == 1 else f"Published version {version} of {name}"
                )
            else:
                app.terminal.display_info(f"Function {name} is already registered with this policy (version {version})")
            status = {f["path"]: f["status"] for f in published["files"]}
            for kind, files in declared.items():
                for path in files:
                    local_file = given[kind].get(path)
                    if local_file is None:
                        if status[path] != "loaded":
                            app.abort(
                                f"version {version} of {name} needs {path}: no earlier version holds it; give it "
                                f"(--{'program' if kind == 'program' else 'data'} PATH=FILE) and publish again"
                            )
                        outcomes.append({"path": path, "kind": kind, "result": "shared with an earlier version"})
                        continue
                    outcomes.append(
                        {
                            "path": path,
                            "kind": kind,
                            "result": _upload(app, api, f"{name}:{version}", kind, path, local_file),
                        }
                    )
        except BaseException:  # an abort, an API error, an interrupt: each goes on once the version is withdrawn
            if published["created"]:
                _withdraw(app, api, name, version)
            raise
    except ApiError as exc:
        app.abort(exc.message)
    if as_json:
        app.terminal.display_json(
            {"function": name, "version": version, "created": published["created"], "files": outcomes}
        )
    else:
        app.terminal.display_table(
            f"Function {name}, version {version}",
            ["Path", "Kind", "Result"],
            [[o["path"], o["kind"].replace("_", " "), o["result"]] for o in outcomes],
        )


def _withdraw(app: Application, api: Api, name: str, version: int) -> None:
    """Take back the version this command created and could not load: left, it would be `latest`, which no
    instance can start from until every file is loaded (a failed publish leaves nothing half-published). Only
    that version, and only while it is not loaded: another publisher of the same policy may have completed it
    meanwhile. The API ends a function with its last version. Version numbers are not reused."""
    try:
        if api.call("ccfaas", "GET", f"/function/{name}/versions/{version}").get("loaded"):
            app.terminal.display_info(f"Version {version} of {name} was loaded meanwhile by another publish: kept")
            return
        api.call("ccfaas", "DELETE", f"/function/{name}/versions/{version}")
    except ApiError as exc:
        app.terminal.display_error(
            f"version {version} of {name} could not be withdrawn ({exc.message}); "
            f"`ipoc function delete {name}:{version}` takes it back once nothing uses it"
        )
        return
    app.terminal.display_info(
        f"Function {name} withdrawn: nothing was registered"
        if version == 1
        else f"Version {version} of {name} withdrawn: `latest` is the version before it again"
    )


def _upload(app: Application, api: Api, name: str, kind: str, path: str, local: Path) -> str:
    base = f"/function/{name}/{kind}/{encode_path(path)}"
    if api.call("ccfaas", "GET", base)["status"] == "loaded":
        return "already loaded"
    size = local.stat().st_size
    if size <= DIRECT_UPLOAD_LIMIT:  # one request: the bar fills when the API has stored the file
        try:
            with app.terminal.progress(f"upload {path}", size) as advance:
                api.call("ccfaas", "POST", base, data=local.read_bytes(), expect=(201,))
                advance(size)
            return f"uploaded ({size} bytes)"
        except ApiError as exc:
            if exc.status != 413:
                raise
            # the deployment's direct uploads are smaller (IPOC_DIRECT_UPLOAD_LIMIT): through S3, as a large file
    start = api.call("ccfaas", "POST", f"{base}/upload", expect=(201,))
    with app.terminal.progress(f"upload {path}", size) as advance, open(local, "rb") as handle:
        try:
            reply = requests.put(start["upload_url"], data=_ProgressReader(handle, advance, size), timeout=3600)
        except requests.RequestException as exc:
            raise ApiError(0, "UploadFailed", f"the presigned upload of {path} failed: {exc}") from None
    if reply.status_code >= 300:
        raise ApiError(reply.status_code, "UploadFailed", f"the presigned upload of {path} failed: {reply.text[:200]}")
    api.call("ccfaas", "POST", f"{base}/upload/complete", expect=(201,))
    return f"uploaded through S3 ({size} bytes)"


class _ProgressReader:
    """A file wrapper that reports each block requests reads from it (and so sends).

    Its length tells requests the Content-Length; without it requests would also
    announce ``Transfer-Encoding: chunked`` and send an unchunked body (S3 refuses that).
    """

    def __init__(self, handle: BinaryIO, advance: Callable[[int], object], size: int) -> None:
        self.handle, self.advance, self.size = handle, advance, size

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n if n and n > 0 else 1 << 20)
        self.advance(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(1 << 20), b"")

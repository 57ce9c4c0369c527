"""Fidelity fixes for moto, applied by the local stack and by the tests.

DynamoDB applies a conditional write atomically; moto checks the condition and
then writes, with nothing stopping another thread in between, so two
concurrent conditional puts can both succeed. Our slot allocation and upload
bookkeeping rely on that atomicity, so every moto DynamoDB operation runs under
one lock here (``LOCK``; ``local.persistence`` defers its file writes until a
request lets go of it).

S3 takes concurrent PUTs of one key; moto closes the replaced object's buffer
while the other request still builds its response from it ("I/O operation on
closed file"). Object requests are serialised too.

S3 answers a part uploaded to a multipart upload that was completed or aborted
with 404 NoSuchUpload; moto raises a KeyError (a 500, or an exception in the
caller in process). Our presigned upload URLs rely on that answer.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import threading
import zlib
from collections.abc import Callable
from typing import Any

from local.patching import mark


class DeferringLock:
    """moto's one lock (re-entrant), plus work its holder defers until it lets go.

    ``local.persistence`` swaps an object or item in memory under this lock and
    defers writing it to disk (the bytes, their ``fsync``) until the thread's
    outermost ``with`` ends: the request still answers only once its change is
    durable, but other requests do not wait behind a large upload's ``fsync``.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()

    def __enter__(self) -> DeferringLock:
        self._lock.acquire()
        self._local.depth = getattr(self._local, "depth", 0) + 1
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self._local.depth -= 1
        pending: list[Callable[[], None]] = []
        if self._local.depth == 0:
            pending, self._local.pending = getattr(self._local, "pending", []), []
        self._lock.release()
        failure: BaseException | None = None
        for callback in pending:  # every one runs: each keeps the disk in step with one change in memory
            try:
                callback()
            except BaseException as exc:  # noqa: BLE001  # the first is raised once all have run
                failure = failure or exc
        if failure is not None and error is None:
            raise failure

    def held(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def after_release(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this thread has let go of the lock (at once when it does not hold it)."""
        if self.held():
            self._local.__dict__.setdefault("pending", []).append(callback)
        else:
            callback()


LOCK = DeferringLock()  # also taken by local.persistence around its changes
_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
    "batch_get_item",
)


def serialise_dynamodb_writes() -> None:
    """Make moto's DynamoDB operations atomic with respect to each other (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name, None)
        if original is None or getattr(original, "_ipoc_serialised", False):
            continue
        setattr(DynamoDBBackend, name, _locked(original))


def serialise_s3_object_requests() -> None:
    """Handle moto's S3 object requests one at a time (idempotent)."""
    from moto.s3.responses import S3Response

    if not getattr(S3Response._key_response, "_ipoc_serialised", False):
        S3Response._key_response = _locked(S3Response._key_response)  # type: ignore[method-assign]  # moto patched


def refuse_parts_of_closed_uploads() -> None:
    """A part for an upload that is no longer open is NoSuchUpload, as in S3 (idempotent)."""
    from moto.s3.exceptions import NoSuchUpload
    from moto.s3.models import S3Backend

    original = S3Backend.upload_part
    if getattr(original, "_ipoc_patched", False):
        return

    @functools.wraps(original)
    def upload_part(self: Any, bucket_name: str, multipart_id: str, *args: Any, **kwargs: Any) -> Any:
        if multipart_id not in self.get_bucket(bucket_name).multiparts:
            raise NoSuchUpload(upload_id=multipart_id)
        return original(self, bucket_name, multipart_id, *args, **kwargs)

    mark(upload_part, "_ipoc_patched")
    S3Backend.upload_part = upload_part  # type: ignore[method-assign]  # moto patched in place


def cache_module_list() -> None:
    """Speed only: moto's server lists its own package directory (a ``stat`` per service, ~150) twice
    per request to find the backend for a host; the list cannot change while it runs (idempotent)."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_ipoc_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    mark(list_of_moto_modules, "_ipoc_cached")
    backends.list_of_moto_modules = list_of_moto_modules


def cache_action_names() -> None:
    """Speed only: moto lists every function of a response class (``inspect.getmembers``, ~0.4 ms) on each
    request to check the action exists; a class's functions do not change while the server runs (idempotent)."""
    from moto.core import responses, utils

    if getattr(responses.method_names_from_class, "_ipoc_cached", False):
        return
    names = functools.cache(utils.method_names_from_class)

    def method_names_from_class(clazz: object) -> list[str]:
        return names(clazz)

    mark(method_names_from_class, "_ipoc_cached")
    responses.method_names_from_class = method_names_from_class


_PLAIN_READ_KEYS = frozenset({"Item", "Items", "Count", "ScannedCount", "LastEvaluatedKey"})
_READS = frozenset({"GetItem", "Query", "Scan"})


def fast_dynamodb_reads() -> None:
    """Speed only: answer GetItem, Query and Scan with ``json.dumps`` of moto's result instead of its
    shape-walking serializer (half the local AWS's CPU per read, profiled). Their results are DynamoDB
    JSON already; only binary values need base64, as the serializer gives them. Anything else (consumed
    capacity, errors, pretty printing) goes through moto's serializer as before (idempotent).
    tests/unit/local/test_moto_patches.py checks the bytes are the serializer's own."""
    from moto import settings
    from moto.core.serialize import JSONSerializer
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    if getattr(original, "_ipoc_fast", False):
        return

    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        if (
            context.operation_model.name in _READS
            and context.serializer_class is JSONSerializer
            and isinstance(result, dict)
            and result.keys() <= _PLAIN_READ_KEYS
            and not settings.PRETTIFY_RESPONSES
        ):
            return (
                200,
                {"Content-Type": "application/x-amz-json-1.0"},
                json.dumps(result, default=dynamodb_json_default),
            )
        return original(self, context)

    mark(execute_result, "_ipoc_fast")
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]  # moto patched in place


def direct_dynamodb(app: Callable[..., Any]) -> Callable[..., Any]:
    """Speed only: moto's WSGI ``app`` with DynamoDB requests handed straight to moto's DynamoDB handler.

    moto's server finds a request's backend (under one lock, for every request) and runs it through a
    Flask app (request context, URL map, CORS, response wrapping) whose one DynamoDB route calls
    ``DynamoHandler.dispatch``: about half of the local AWS's CPU per control-plane read (profiled). Here a
    request that moto would route there (``POST /``, signed for ``dynamodb``, a ``DynamoDB_20120810``
    target, no ``Origin``: not a browser's, whose CORS answer is flask-cors's to give) is given to that same
    call, as moto's Flask view gives it (the same request class, recorder, ClientError answer and CORS
    header); every other request goes to ``app``. A plain GetItem (a table, a key of strings or numbers, a
    consistent read or not; nothing else) is answered from the same backend call moto's handler makes, when
    that call succeeds: the control plane's every read, for a third of the CPU of moto's request parsing
    and dispatch. Anything else, errors included, is moto's handler's to answer.
    tests/unit/local/test_direct_dynamodb.py checks the answers are the Flask app's own, byte for byte."""
    from botocore.exceptions import ClientError
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_api import recorder
    from moto.moto_server.werkzeug_app import BackendRequest
    from werkzeug.wrappers import Response

    cors = _cors()

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        scope = _dynamodb_scope(environ)
        if scope is None:
            return app(environ, start_response)
        answer = None
        if environ["HTTP_X_AMZ_TARGET"] == "DynamoDB_20120810.GetItem" and environ.get("CONTENT_LENGTH"):
            body = _read(environ["wsgi.input"], int(environ["CONTENT_LENGTH"]))
            environ["wsgi.input"] = io.BytesIO(body)  # for the request moto's handler reads, if it is to answer
            answer = plain_get_item_answer(body, *scope)
        request = BackendRequest(environ)
        recorder._record_request(request)
        if answer is not None:
            start_response("200 OK", answer[0])
            return [answer[1]]
        try:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        return Response(response=content, status=status, headers={**headers, **cors})(environ, start_response)

    return dispatch


def _dynamodb_scope(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(access key, region) of a request moto's server would give to its DynamoDB app
    (``DomainDispatcherApplication``'s rules); None for any other."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/" or "HTTP_ORIGIN" in environ:
        return None
    return dynamodb_scope(environ.get("HTTP_X_AMZ_TARGET", ""), environ.get("HTTP_AUTHORIZATION", ""))


def dynamodb_scope(target: str, authorization: str) -> tuple[str, str] | None:
    """(access key, region) of a ``POST /`` (no ``Origin``) with these ``X-Amz-Target`` and ``Authorization``
    headers when moto's server would give it to its DynamoDB app; None otherwise."""
    if not target.startswith("DynamoDB_20120810."):
        return None
    try:  # "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/dynamodb/aws4_request, ..."
        credential, _, region, service, _ = authorization.split(",")[0].split()[1].split("/")
    except (IndexError, ValueError):
        return None
    return (credential.removeprefix("Credential="), region) if service.lower() == "dynamodb" else None


def plain_get_item_answer(body: bytes, access_key: str, region: str) -> tuple[list[tuple[str, str]], bytes] | None:
    """The headers and body of moto's handler's 200 answer to a plain GetItem (:func:`direct_dynamodb`), made
    here (a werkzeug Response costs more); None: moto's handler is to answer it."""
    answer = _plain_get_item(body, access_key, region)
    if answer is None:
        return None
    data = answer.encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("server", "amazon.com"),
        ("x-amzn-requestid", _request_id()),
        ("x-amz-crc32", str(zlib.crc32(data))),
        ("Content-Length", str(len(data))),
        *_cors().items(),
    ]
    return headers, data


@functools.cache
def _cors() -> dict[str, str]:
    from moto.moto_server.werkzeug_app import DISABLE_GLOBAL_CORS

    return {} if DISABLE_GLOBAL_CORS else {"Access-Control-Allow-Origin": "*"}  # what flask-cors adds there


def _request_id() -> str:
    """52 letters and digits, as moto's and DynamoDB's (moto draws its 52 one ``random.choice`` at a time;
    base64's b32encode is Python, ~12 us: hex is C)."""
    return os.urandom(26).hex().upper()


def _read(stream: Any, length: int) -> bytes:
    body = b""
    while len(body) < length and (chunk := stream.read(length - len(body))):
        body += chunk
    return body


_PLAIN_GET = frozenset({"TableName", "Key", "ConsistentRead"})


def _plain_get_item(body: bytes, access_key: str, region: str) -> str | None:
    """A plain GetItem's answer, as moto's handler gives it, or None for moto's handler to answer (anything
    its validation might refuse, or that this does not handle)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import dynamo_to_dict
    from moto.iam.models import get_account_id_from

    try:
        request = json.loads(body)
        name, key = request["TableName"], request["Key"]
    except (ValueError, KeyError, TypeError):
        return None
    if request.keys() - _PLAIN_GET or not isinstance(request.get("ConsistentRead", False), bool):
        return None
    if not isinstance(name, str) or not isinstance(key, dict) or not key:
        return None
    for value in key.values():  # {"S": "non-empty"} or {"N": "..."}: what moto takes as it arrives
        if not (isinstance(value, dict) and len(value) == 1):
            return None
        kind, text = next(iter(value.items()))
        if kind not in ("S", "N") or not isinstance(text, str) or not text:
            return None
    try:
        backend = dynamodb_backends[get_account_id_from(access_key)][region]
        table = backend.tables.get(name)
        if table is None or not all(attribute in table.attribute_keys for attribute in key):
            return None
        item = backend.get_item(name, key, [])
    except Exception:  # noqa: BLE001  # moto's handler answers it, with moto's error
        return None
    result = {"Item": item.describe_attrs(attributes=None)["Item"]} if item else {}
    return json.dumps(dynamo_to_dict(result), default=dynamodb_json_default)


def dynamodb_json_default(value: Any) -> str:
    """``json.dumps``'s default for DynamoDB JSON: binary values travel as base64."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def defer_batch_import() -> None:
    """Speed only (``ipoc local up``): the Step Functions interpreter imports ``moto.batch.utils`` for one
    enum, and importing that runs ``moto/batch/__init__.py``, which imports all of moto's EC2 (a CPU
    second, several seconds of wall time under load, botocore's region list parsed again and again).
    Here ``moto.batch`` is a package whose submodules import on their own and whose ``__init__`` runs
    on first use of the package itself (a Batch request), so nothing changes but when. Call before
    anything imports ``moto.stepfunctions`` (idempotent)."""
    import importlib.util
    import sys
    import types

    name = "moto.batch"
    if name in sys.modules:
        return
    import moto

    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None and spec.submodule_search_locations is not None
    package = types.ModuleType(name)
    package.__spec__, package.__loader__, package.__file__, package.__package__ = spec, spec.loader, spec.origin, name
    package.__path__ = list(spec.submodule_search_locations)
    loader = spec.loader

    def __getattr__(attribute: str) -> Any:  # noqa: N807  # the package's own attributes: run its __init__ now
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, attribute)

    # A module-level __getattr__ (PEP 562) set from outside: typeshed declares ModuleType's as a method.
    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = package
    moto.batch = package


def apply_all() -> None:
    serialise_dynamodb_writes()
    serialise_s3_object_requests()
    refuse_parts_of_closed_uploads()


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(*args, **kwargs)

    mark(wrapper, "_ipoc_serialised")
    return wrapper

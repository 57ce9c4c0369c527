"""Run Lambda functions registered in moto by importing and calling our handler in process.

moto runs Python Lambdas only in docker, which this machine lacks. The local
stack and the tests register the task functions in moto with a ``Handler``
such as ``lambdas.ccfaas.tasks.lambda_handler``; this runner makes moto's
invoke import that module and call it. A raised exception becomes a function
error with ``errorType`` = the exception's class name, as Lambda reports it, so
Step Functions' Retry and Catch match our error names.

moto's interpreter makes a new boto3 client for every ``lambda:invoke`` state
(several ms of CPU in the process that also serves the workflow's own calls);
:func:`install` makes it keep one per region, service and endpoint (boto3
clients are thread-safe), which is what a long-lived Lambda service client does.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import traceback
from typing import Any

from local.context import LocalLambdaContext
from local.patching import mark

log = logging.getLogger(__name__)


def install() -> None:
    """Patch moto's Lambda invoke (idempotent)."""
    from moto.awslambda.models import LambdaFunction

    if getattr(LambdaFunction._invoke_lambda, "_ipoc_runner", False):
        return

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
        return invoke(self.handler, payload, self.function_name)

    mark(_invoke_lambda, "_ipoc_runner")
    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]  # moto patched in place
    _reuse_invoke_clients()


def _reuse_invoke_clients() -> None:
    """One boto3 client per (region, service, endpoint) for the interpreter's Lambda invocations."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils.boto_client_for

    @functools.lru_cache(maxsize=16)
    def cached(region: str, service: str, stubbed: bool, port: Any) -> Any:
        return original(region=region, service=service)

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # The original ignores state_credentials (fixed test keys); the endpoint depends on these two.
        return cached(region, service, botocore_stubber.enabled, moto_server_port())

    lambda_eval_utils.boto_client_for = boto_client_for


def invoke(handler_path: str, payload: Any, function_name: str = "ipoc-task") -> tuple[str, bool, str]:
    """Call ``module.function`` with ``payload``; return (result JSON, errored, log text)."""
    module_name, _, attribute = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    try:
        result = handler(payload, LocalLambdaContext(function_name=function_name))
    except Exception as exc:  # a function error, as Lambda reports it
        log.info("%s raised %s: %s", function_name, type(exc).__name__, exc)
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        return json.dumps(error), True, "".join(traceback.format_exception_only(type(exc), exc))
    return json.dumps(result), False, ""

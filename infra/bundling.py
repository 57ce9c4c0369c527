"""What the Lambdas are made of: our code (``ipoc/`` and ``lambdas/``) and a dependencies layer.

No Docker here, so both are prepared on this machine before CDK hashes them:
the code is copied into ``build/cdk/lambda-code`` on every synth (cheap, and
the asset hash changes exactly when the code does); the layer is installed
with pip for the Lambda runtime's Python and platform into
``build/cdk/lambda-deps/<key>`` once per set of pins, taken from
``pyproject.toml`` so the Lambdas run what the tests ran.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "cdk"
CODE_PACKAGES = ("ipoc", "lambdas")
# What the Lambda code imports beyond the standard library (and local-only modules).
LAMBDA_DEPENDENCIES = (
    "aws-lambda-powertools",
    "boto3",
    "cryptography",
    "jsonschema",
    "kubernetes",
    "protobuf",
    "pybase64",
)
LAMBDA_PYTHON = "3.14"
LAMBDA_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
_NAME = re.compile(r"^([A-Za-z0-9_.-]+)")


class BundlingError(RuntimeError):
    """The Lambda code or its dependencies could not be prepared."""


def project_pins(
    names: tuple[str, ...], pyproject: Path = ROOT / "pyproject.toml", *, who: str = "the Lambdas"
) -> list[str]:
    """The project's own pins for ``names``, in that order (extras kept, e.g. ``[tracer]``)."""
    pins = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    wanted: dict[str, str] = {}
    for pin in pins:
        match = _NAME.match(pin)
        name = match.group(1).split("[")[0].lower() if match else ""
        if name in names:
            wanted[name] = pin
    missing = sorted(set(names) - set(wanted))
    if missing:
        raise BundlingError(f"pyproject.toml pins no {', '.join(missing)}: {who} need them")
    return [wanted[name] for name in names]


def lambda_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's own pins for :data:`LAMBDA_DEPENDENCIES`."""
    return project_pins(LAMBDA_DEPENDENCIES, pyproject)


def code_directory(out: Path = BUILD / "lambda-code") -> Path:
    """A fresh copy of the packages the Lambdas import, without caches."""
    if out.exists():
        shutil.rmtree(out)
    for package in CODE_PACKAGES:
        shutil.copytree(
            ROOT / package, out / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        )
    return out


def dependencies_directory(requirements: list[str] | None = None, cache: Path = BUILD / "lambda-deps") -> Path:
    """A layer directory (``python/`` inside) with the pinned dependencies, installed once per pin set."""
    requirements = requirements or lambda_requirements()
    key = hashlib.sha256("\n".join([LAMBDA_PYTHON, *LAMBDA_PLATFORMS, *requirements]).encode()).hexdigest()[:16]
    layer = cache / key
    if (layer / ".complete").exists():
        return layer
    staging = cache / f".{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    platforms = [arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(staging / "python"),
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON,
        "--only-binary=:all:",
        *platforms,
        *requirements,
    ]
    print(
        f"Installing the Lambda dependencies for Python {LAMBDA_PYTHON} into {layer} (once per set of pins) ...",
        file=sys.stderr,
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise BundlingError(f"pip could not install the Lambda dependencies:\n{result.stderr[-4000:]}")
    # Lambda provides its own boto3 too; ours is pinned so the code runs what the tests ran.
    # Drop what Lambda never uses.
    for junk in (staging / "python").glob("*/__pycache__"):
        shutil.rmtree(junk)
    (staging / ".complete").write_text("\n".join(requirements) + "\n")
    shutil.rmtree(layer, ignore_errors=True)
    staging.rename(layer)
    return layer

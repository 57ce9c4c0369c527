"""The mark each of our in-place patches leaves on what it patched.

A patch checks for its mark before applying itself, so applying it twice (the
stack and the tests both do) changes nothing. Functions and classes take any
attribute at run time; mypy knows only the declared ones, hence this one setter.
"""

from __future__ import annotations

from typing import Any


def mark(target: object, flag: str, value: Any = True) -> None:
    """Set ``flag`` (an ``_ipoc_*`` name) on a patched function or class; read back with ``getattr``."""
    setattr(target, flag, value)

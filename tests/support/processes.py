"""Subprocesses of the real ``ipoc`` CLI, from their home that benchmarks share (bench may not import tests)."""

from bench.harness.processes import (
    IPOC,
    Process,
    run,
    start,
)

__all__ = ["IPOC", "Process", "start", "run"]

"""Bounded waits and free loopback ports, from their home that benchmarks share (bench may not import tests)."""

from bench.harness.waiting import (
    free_port,
    free_port_range,
    wait_until,
)

__all__ = ["wait_until", "free_port", "free_port_range"]

"""Example policies built by the real composition code, from their home that benchmarks share (bench may not
import tests)."""

from bench.harness.policies import (
    ECHO,
    ECHO_PROGRAM_RIGHTS,
    LOADER_RIGHTS,
    USER_RIGHTS,
    echo_function,
    full_policy,
    vaas_policy,
)

__all__ = ["ECHO", "ECHO_PROGRAM_RIGHTS", "USER_RIGHTS", "LOADER_RIGHTS", "echo_function", "vaas_policy", "full_policy"]

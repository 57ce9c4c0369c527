"""Counts the reliability suite reports at the end (`make reliability` prints them; build/reliability.json keeps
them)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class Tally:
    faults_injected: int = 0
    leaks_found: int = 0
    requests_fuzzed: int = 0
    server_errors: int = 0  # 5xx a route does not document (documented: 502 dependency, 507 no slot)
    documented_dependency_errors: int = 0
    malformed_errors: int = 0  # 4xx without the {"error", "message"} shape
    concurrent_operations: int = 0
    double_allocations: int = 0
    lost_updates: int = 0
    refusals_checked: int = 0
    secrets_found: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")


TALLY = Tally()

"""Run a WebAssembly program with wasmtime under the policy's limits.

One Engine per runtime, a fresh Store per run. Every run has a memory cap
(``max_memory_mib``, for all of the program's memory: one linear memory, the
program's instance plus the guard's shim, bounded tables) and a wall-clock limit enforced with epoch
interruption for wasm code and by :mod:`runtime.wasi_guard` for blocking host
calls; the program sees only its pre-opened directories, may change the tree's
shape only as its rights say and, when the policy says ``enable_clock: false``,
has no clock. Runs are serialised: the epoch that stops a run is engine-wide.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from ipoc import rights
from ipoc.policy import Principal
from runtime.refusal import Refused
from runtime.vfs import Preopen
from runtime.wasi_guard import GUARD_MODULE, SHIM_WAT, TimeLimitExceeded, WasiGuard, import_memory

log = logging.getLogger(__name__)

ERRNO_NOTCAPABLE = 76  # WASI errno: "capabilities insufficient"
MODULE_CACHE_SIZE = 16
# A C program has one function table; 2^17 entries (1 MiB of references) fits large programs.
MAX_TABLES = 1
MAX_TABLE_ELEMENTS = 1 << 17
MONITOR_INTERVAL = 0.05  # seconds between checks of the file-system cap during a run


@dataclass(frozen=True)
class Streams:
    """Host files for the program's standard streams; None means not connected."""

    stdin: Path | None = None
    stdout: Path | None = None
    stderr: Path | None = None


class Executor:
    def __init__(self, *, max_memory_mib: int, enable_clock: bool, time_limit: float) -> None:
        if time_limit <= 0:
            raise ValueError("time_limit must be positive")
        config = wasmtime.Config()
        # Epoch interruption lets a timer thread stop a runaway program at a bounded cost per loop.
        config.epoch_interruption = True
        # Proposals a WASI command built by clang/zig does not need, each a way around the limits
        # (multi-memory multiplies max_memory_mib, memory64/threads/gc add memory the cap does not see).
        config.wasm_multi_memory = False
        config.wasm_memory64 = False
        config.wasm_threads = False
        config.shared_memory = False
        config.wasm_gc = False
        config.wasm_function_references = False
        config.wasm_exceptions = False
        config.wasm_stack_switching = False
        config.wasm_component_model = False
        config.wasm_custom_page_sizes = False
        self.engine = wasmtime.Engine(config)
        self.max_memory = max_memory_mib * 1024 * 1024
        self.enable_clock = enable_clock
        self.time_limit = time_limit
        self._modules: OrderedDict[str, tuple[wasmtime.Module, wasmtime.MemoryType | None]] = OrderedDict()
        self._shim = wasmtime.Module(self.engine, SHIM_WAT)
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    def module(self, wasm: bytes) -> wasmtime.Module:
        return self._compile(wasm)[0]

    def _compile(self, wasm: bytes) -> tuple[wasmtime.Module, wasmtime.MemoryType | None]:
        """Compile once per distinct binary (keyed by sha256) and keep the most recent few.

        The module compiled is the program with its memory imported
        (:func:`runtime.wasi_guard.import_memory`), so the guard's wasm shim can
        share it; a binary that cannot be rewritten is compiled as it is. Returns
        the module and the type of the memory it imports (None: not rewritten).
        A program that imports anything of the guard's module itself is refused:
        that module is the runtime's (its only import from it is the memory the
        rewrite adds).
        """
        key = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            cached = self._modules.get(key)
            if cached is not None:
                self._modules.move_to_end(key)
                return cached
        try:
            wasmtime.Module.validate(self.engine, wasm)  # errors name the program's own bytes, not the rewrite
            rewritten = import_memory(wasm)
            module = wasmtime.Module(self.engine, rewritten[0] if rewritten else wasm)
        except wasmtime.WasmtimeError as exc:
            raise Refused(
                "ExecutionFailed", f"the program is not a valid WebAssembly module: {_first_line(exc)}"
            ) from None
        own = [item.name for item in module.imports if item.module == GUARD_MODULE]
        if rewritten:
            own.remove("memory")  # the import the rewrite added (the last of them)
        if own:
            names = ", ".join(f"{GUARD_MODULE}.{name}" for name in own)
            raise Refused(
                "ExecutionFailed",
                f"the program imports {names}: the {GUARD_MODULE} module is the runtime's own; import only WASI "
                "(wasi_snapshot_preview1) and define one memory",
            )
        compiled = (module, rewritten[1] if rewritten else None)
        with self._lock:
            self._modules[key] = compiled
            while len(self._modules) > MODULE_CACHE_SIZE:
                self._modules.popitem(last=False)
        return compiled

    def run(
        self,
        wasm: bytes,
        preopens: list[Preopen],
        streams: Streams,
        *,
        program: Principal | None = None,
        monitor: Callable[[], str | None] | None = None,
    ) -> int:
        """Run the module's ``_start``; return its exit code (0 when it returns normally).

        ``program`` holds the rights the shadowed WASI functions check; without it
        each pre-opened directory grants its own ``rights`` (none given: READ, or
        READ_WRITE when writable). ``monitor`` is polled
        while the program runs (and once after): a message stops the run and is
        raised as ``FileSystemFull`` (a program's writes go straight to the host,
        so the file-system cap is watched rather than checked per write).
        """
        module, memory_type = self._compile(wasm)
        if program is None:
            program = Principal(
                "program",
                {p.guest_path: p.rights or (rights.READ_WRITE if p.writable else rights.READ) for p in preopens},
            )
        with self._run_lock:
            return self._run(module, memory_type, preopens, streams, program, monitor)

    def _run(
        self,
        module: wasmtime.Module,
        memory_type: wasmtime.MemoryType | None,
        preopens: list[Preopen],
        streams: Streams,
        program: Principal,
        monitor: Callable[[], str | None] | None,
    ) -> int:
        # A fresh store per run: nothing a previous run did survives in memory.
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=self.max_memory, memories=1, instances=2, tables=MAX_TABLES, table_elements=MAX_TABLE_ELEMENTS
        )
        store.set_epoch_deadline(1)

        # WASI: no argv, no environment (as Veracruz), only the granted directories.
        wasi = wasmtime.WasiConfig()
        wasi.argv = []
        for preopen in preopens:
            wasi.preopen_dir(str(preopen.host_dir), preopen.guest_path, preopen.writable)
        if streams.stdin is not None:
            wasi.stdin_file = str(streams.stdin)
        if streams.stdout is not None:
            wasi.stdout_file = str(streams.stdout)
        if streams.stderr is not None:
            wasi.stderr_file = str(streams.stderr)
        store.set_wasi(wasi)

        cancel = threading.Event()
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        guard = WasiGuard(
            program,
            preopens,
            deadline=time.monotonic() + self.time_limit,
            cancel=cancel,
            enable_clock=self.enable_clock,
        )
        try:
            memory = wasmtime.Memory(store, memory_type) if memory_type is not None else None
        except wasmtime.WasmtimeError as exc:
            raise Refused("ExecutionFailed", f"the program's memory could not be made: {_first_line(exc)}") from None
        guard.install(linker, store, self._shim, memory)
        if not self.enable_clock:
            self._hide_clock(linker)

        def stop() -> None:
            cancel.set()  # wakes a program waiting in poll_oneoff
            self.engine.increment_epoch()  # interrupts wasm code

        timer = threading.Timer(self.time_limit, stop)
        timer.daemon = True
        timer.start()
        finished = threading.Event()
        overflow: list[str] = []

        def watch() -> None:
            while monitor is not None and not finished.wait(MONITOR_INTERVAL):
                message = monitor()
                if message:
                    overflow.append(message)
                    stop()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            try:
                instance = linker.instantiate(store, module)
                start = instance.exports(store).get("_start")
                if not isinstance(start, wasmtime.Func):
                    raise Refused(
                        "ExecutionFailed", "the program exports no _start function (build it as a WASI command)"
                    )
                start(store)
                code = 0
            except wasmtime.ExitTrap as exc:
                code = exc.code
            except (TimeLimitExceeded, wasmtime.Trap):
                if overflow:
                    raise Refused("FileSystemFull", f"the program was stopped: {overflow[0]}") from None
                raise
            finished.set()
            watcher.join()
            message = overflow[0] if overflow else monitor() if monitor is not None else None
            if message:
                raise Refused("FileSystemFull", f"the program was stopped: {message}")
            return code
        except TimeLimitExceeded:
            raise Refused("ExecutionFailed", f"the program exceeded the {self.time_limit:g} s time limit") from None
        except wasmtime.Trap as exc:
            if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise Refused("ExecutionFailed", f"the program exceeded the {self.time_limit:g} s time limit") from None
            raise Refused("ExecutionFailed", f"the program trapped: {_first_line(exc)}") from None
        except wasmtime.WasmtimeError as exc:
            raise Refused("ExecutionFailed", f"the program could not be instantiated: {_first_line(exc)}") from None
        except Refused:
            raise
        except Exception as exc:  # a host function failed: a bug of ours, but the program's run ends cleanly
            log.exception("a host function failed while running the program")
            raise Refused(
                "ExecutionFailed",
                f"the runtime failed serving the program's WASI call ({type(exc).__name__}); the run was stopped",
            ) from None
        finally:
            finished.set()
            timer.cancel()

    @staticmethod
    def _hide_clock(linker: wasmtime.Linker) -> None:
        """Shadow WASI's clock functions with ones that report 'not capable'."""
        linker.allow_shadowing = True
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        linker.define_func(
            "wasi_snapshot_preview1",
            "clock_time_get",
            wasmtime.FuncType([i32, i64, i32], [i32]),
            lambda clock, precision, out: ERRNO_NOTCAPABLE,
        )
        linker.define_func(
            "wasi_snapshot_preview1",
            "clock_res_get",
            wasmtime.FuncType([i32, i32], [i32]),
            lambda clock, out: ERRNO_NOTCAPABLE,
        )
        linker.allow_shadowing = False


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

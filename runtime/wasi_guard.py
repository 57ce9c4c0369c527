"""WASI host functions the runtime shadows to enforce what wasmtime's preopens cannot express.

wasmtime's pre-opened directories know only "read-only" or "writable"; the policy
gives a program a rights number per directory (Veracruz's ``find_prestat`` rule:
the deepest granted ancestor applies). The operations that change the tree's
shape are therefore done here, on the host, after checking the bit the policy
must grant:

=====================  ==========================================
path_create_directory  PATH_CREATE_DIRECTORY
path_remove_directory  PATH_REMOVE_DIRECTORY
path_unlink_file       PATH_UNLINK_FILE
path_rename            PATH_RENAME_SOURCE / PATH_RENAME_TARGET
path_symlink           PATH_SYMLINK (the target must stay inside)
path_link              PATH_LINK_SOURCE / PATH_LINK_TARGET
path_open              PATH_OPEN; PATH_CREATE_FILE to create;
                       PATH_FILESTAT_SET_SIZE to truncate; FD_READ
                       to open for reading; FD_READDIR for a
                       directory; the new descriptor gets only the
                       rights the grant holds
fd_readdir             FD_READDIR (a pre-opened directory; any other
                       was opened only with FD_READDIR)
=====================  ==========================================

``path_open`` is checked here and then handed to wasmtime's own with the
requested rights masked by the grant (Veracruz: a new descriptor's rights are
the requested ones ANDed with the directory's). wasmtime opens a file for
reading only when FD_READ is asked for, so a directory granted WRITE (no
FD_READ) takes new files and appends but gives nothing back. The grant is the
one covering the path *after* following any links a program planted, so a link
cannot lend one directory's rights to another's files. ``fd_close`` and
``fd_renumber`` are also wrapped, only to keep track of which descriptor number is
which pre-opened directory.

wasmtime's WASI functions find the memory through their caller's ``memory``
export, so a Python host function cannot call them (there is no wasm caller:
"missing required memory export"). The wrappers are therefore a tiny wasm
module (:data:`SHIM_WAT`) that calls the Python check and then wasmtime's
function, and that exports the program's memory: :func:`import_memory`
rewrites the program so its one memory is imported from the host instead of
defined (indices unchanged: a memory import does not shift functions).

All of them act only through a pre-opened directory's descriptor (what wasi-libc
uses for every path); a directory descriptor the program opened itself is
answered ``NOTCAPABLE``. No host walk follows a link (:mod:`runtime.nofollow`).

``poll_oneoff`` (``sleep``, ``nanosleep``) is also served here so a blocking wait
never outlives the execution's time limit: epoch interruption only stops wasm
code, not a host call.

With ``enable_clock: false`` file timestamps would still tell the host's time,
so ``path_filestat_get`` (``stat``) is served here with every timestamp zero,
``fd_filestat_get`` (``fstat``) answers only for the standard streams and the
pre-opened directories (other descriptors: ``NOTCAPABLE``), and a wait until an
absolute time is refused.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import wasmtime

from ipoc import rights
from ipoc.policy import Principal
from runtime import nofollow
from runtime.vfs import Preopen

MODULE = "wasi_snapshot_preview1"
GUARD_MODULE = "ipoc_guard"
FIRST_PREOPEN_FD = 3  # wasmtime numbers pre-opened directories from 3, in the order they are added

# WASI errno values (wasi_snapshot_preview1).
ESUCCESS, EACCES, EBADF, EEXIST, EFAULT, EINVAL, EIO, EISDIR, ELOOP = 0, 2, 8, 20, 21, 28, 29, 31, 32
ENAMETOOLONG, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, EXDEV, ENOTCAPABLE = 37, 44, 54, 55, 63, 75, 76
_FROM_HOST = {
    errno.EACCES: EACCES,
    errno.EEXIST: EEXIST,
    errno.EINVAL: EINVAL,
    errno.EISDIR: EISDIR,
    errno.ELOOP: ELOOP,
    errno.ENAMETOOLONG: ENAMETOOLONG,
    errno.ENOENT: ENOENT,
    errno.ENOTDIR: ENOTDIR,
    errno.ENOTEMPTY: ENOTEMPTY,
    errno.EPERM: EPERM,
    errno.EXDEV: EXDEV,
    errno.EBADF: EBADF,
}

EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE = 0, 1, 2
SUBSCRIPTION_SIZE, EVENT_SIZE = 48, 32
SUBCLOCKFLAG_ABSTIME = 1
OFLAGS_CREAT, OFLAGS_DIRECTORY, OFLAGS_EXCL, OFLAGS_TRUNC = 1, 2, 4, 8
LOOKUPFLAGS_SYMLINK_FOLLOW = 1
WRITE_RIGHTS = int(
    rights.Rights.FD_DATASYNC | rights.Rights.FD_WRITE | rights.Rights.FD_ALLOCATE | rights.Rights.FD_FILESTAT_SET_SIZE
)
WASI_RIGHTS = (1 << 29) - 1  # bits a WASI descriptor can hold (FILE_EXECUTE, bit 29, is Veracruz's own)
MAX_LINK_HOPS = 32
FILETYPE_UNKNOWN, FILETYPE_CHARACTER_DEVICE, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_SYMBOLIC_LINK = (
    0,
    2,
    3,
    4,
    7,
)


class TimeLimitExceeded(Exception):
    """The program waited past its time limit inside a host call."""


class _Errno(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class _Target:
    preopen: Preopen
    parts: list[str]  # components below the preopen's host directory

    @property
    def guest_path(self) -> str:
        return "/".join([self.preopen.guest_path.rstrip("/"), *self.parts]) or "/"

    @property
    def name(self) -> str:
        return self.parts[-1]


class WasiGuard:
    """The shadowed host functions for one execution of ``program``."""

    def __init__(
        self,
        program: Principal,
        preopens: list[Preopen],
        *,
        deadline: float,
        cancel: threading.Event,
        enable_clock: bool = True,
    ) -> None:
        self.program = program
        self.preopens = {FIRST_PREOPEN_FD + i: p for i, p in enumerate(preopens)}
        self.deadline = deadline  # time.monotonic() value
        self.cancel = cancel
        self.enable_clock = enable_clock

    def install(
        self, linker: wasmtime.Linker, store: wasmtime.Store, shim: wasmtime.Module, memory: wasmtime.Memory | None
    ) -> None:
        """Shadow the functions on ``linker`` (after ``define_wasi``).

        ``memory`` is the program's memory when :func:`import_memory` could make
        the program import it; then ``path_open``, ``fd_close``, ``fd_renumber``
        and ``fd_readdir`` go through ``shim`` (:data:`SHIM_WAT`), which checks
        here and calls wasmtime's own with that memory. Without it ``path_open``
        and ``fd_readdir`` are refused.

        The shim is instantiated from a linker of its own (wasmtime's WASI, the
        guard's checks and bookkeeping, the memory), and only its four exports
        and the memory are put on ``linker``: were the checks on the program's
        linker, the program could import ``ipoc_guard.fd_renumbered`` and tell
        the guard a descriptor is another directory than wasmtime knows it as.
        """
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        functions: list[tuple[str, list[wasmtime.ValType], Callable[..., int]]] = [
            ("path_create_directory", [i32] * 3, self.path_create_directory),
            ("path_remove_directory", [i32] * 3, self.path_remove_directory),
            ("path_unlink_file", [i32] * 3, self.path_unlink_file),
            ("path_rename", [i32] * 6, self.path_rename),
            ("path_symlink", [i32] * 5, self.path_symlink),
            ("path_link", [i32] * 7, self.path_link),
            ("poll_oneoff", [i32] * 4, self.poll_oneoff),
        ]
        if not self.enable_clock:
            functions += [
                ("path_filestat_get", [i32] * 5, self.path_filestat_get),
                ("fd_filestat_get", [i32] * 2, self.fd_filestat_get),
            ]
        if memory is None:
            functions.append(("path_open", [i32] * 5 + [i64, i64, i32, i32], lambda caller, *args: ENOTCAPABLE))
            functions.append(("fd_readdir", [i32, i32, i32, i64, i32], lambda caller, *args: ENOTCAPABLE))
        linker.allow_shadowing = True
        for name, params, function in functions:
            linker.define_func(MODULE, name, wasmtime.FuncType(params, [i32]), _errno_of(function), access_caller=True)
        if memory is not None:
            private = wasmtime.Linker(store.engine)
            private.define_wasi()  # the store's WASI context: the program's own descriptors
            private.define(store, GUARD_MODULE, "memory", memory)
            private.define_func(
                GUARD_MODULE,
                "path_open_check",
                wasmtime.FuncType([i32] * 5 + [i64], [i64]),
                self.path_open_check,
                access_caller=True,
            )
            private.define_func(
                GUARD_MODULE, "fd_readdir_check", wasmtime.FuncType([i32], [i32]), self.fd_readdir_check
            )
            private.define_func(GUARD_MODULE, "fd_closed", wasmtime.FuncType([i32], []), self.fd_closed)
            private.define_func(GUARD_MODULE, "fd_renumbered", wasmtime.FuncType([i32, i32], []), self.fd_renumbered)
            exports = private.instantiate(store, shim).exports(store)
            for name in ("path_open", "fd_close", "fd_renumber", "fd_readdir"):
                linker.define(store, MODULE, name, exports[name])
            linker.define(store, GUARD_MODULE, "memory", memory)  # the program's own memory, imported by the rewrite
        linker.allow_shadowing = False

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise _Errno(EINVAL)
        return memory

    def _write(self, caller: wasmtime.Caller, data: bytes, ptr: int) -> int:
        """Write a result into the program's memory: EFAULT when it does not fit there (never a host exception)."""
        memory = self._memory(caller)
        if ptr < 0 or ptr + len(data) > memory.data_len(caller):
            return EFAULT
        memory.write(caller, data, ptr)
        return ESUCCESS

    def _string(self, caller: wasmtime.Caller, ptr: int, length: int) -> str:
        memory = self._memory(caller)
        if ptr < 0 or length < 0 or ptr + length > memory.data_len(caller):
            raise _Errno(EINVAL)
        try:
            return memory.read(caller, ptr, ptr + length).decode()
        except UnicodeDecodeError:
            raise _Errno(EINVAL) from None

    def _target(
        self,
        caller: wasmtime.Caller,
        fd: int,
        ptr: int,
        length: int,
        *,
        allow_root: bool = False,
        keep_dotdot: bool = False,
    ) -> _Target:
        """A path relative to a pre-opened directory, never lexically above it.

        ``..`` is collapsed lexically, which is right for the operations done here
        through :mod:`runtime.nofollow` (they never follow a link, so the host acts
        on the very path checked). ``keep_dotdot`` keeps it for :meth:`_resolve`,
        which applies it after expanding links as POSIX (and wasmtime) does:
        ``l/../f`` names ``f`` beside ``l``'s *target*, not beside ``l``.
        """
        preopen = self.preopens.get(fd)
        if preopen is None:
            raise _Errno(ENOTCAPABLE)
        path = self._string(caller, ptr, length)
        if path.startswith("/") or "\x00" in path:
            raise _Errno(ENOTCAPABLE)
        parts: list[str] = []
        depth = 0
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not depth:
                    raise _Errno(ENOTCAPABLE)
                depth -= 1
                if keep_dotdot:
                    parts.append(part)
                else:
                    parts.pop()
                continue
            if len(part.encode()) > nofollow.NAME_MAX:
                raise _Errno(ENAMETOOLONG)
            parts.append(part)
            depth += 1
        if not parts and not allow_root:
            raise _Errno(EINVAL)  # the pre-opened directory itself cannot be made, removed or renamed
        return _Target(preopen, parts)

    def _require(self, target: _Target, needs: rights.Rights) -> None:
        grant = rights.covering_grant(self.program.grants, target.guest_path)
        if grant is None or needs & ~grant[1]:
            raise _Errno(ENOTCAPABLE)

    @staticmethod
    def _in_parent(target: _Target, action: Callable[[int], None]) -> int:
        try:
            with nofollow.parent_dir(target.preopen.host_dir, target.parts) as parent:
                action(parent)
        except nofollow.LinkRefused:
            return ELOOP
        except OSError as exc:
            return _FROM_HOST.get(exc.errno or 0, EIO)
        return ESUCCESS

    # -- the shadowed functions ----------------------------------------------------

    def path_create_directory(self, caller: wasmtime.Caller, fd: int, ptr: int, length: int) -> int:
        target = self._target(caller, fd, ptr, length)
        self._require(target, rights.Rights.PATH_CREATE_DIRECTORY)
        return self._in_parent(target, lambda parent: os.mkdir(target.name, 0o700, dir_fd=parent))

    def path_remove_directory(self, caller: wasmtime.Caller, fd: int, ptr: int, length: int) -> int:
        target = self._target(caller, fd, ptr, length)
        self._require(target, rights.Rights.PATH_REMOVE_DIRECTORY)
        return self._in_parent(target, lambda parent: os.rmdir(target.name, dir_fd=parent))

    def path_unlink_file(self, caller: wasmtime.Caller, fd: int, ptr: int, length: int) -> int:
        target = self._target(caller, fd, ptr, length)
        self._require(target, rights.Rights.PATH_UNLINK_FILE)

        def unlink(parent: int) -> None:
            if _is_dir(parent, target.name):
                raise IsADirectoryError(errno.EISDIR, target.name)
            os.unlink(target.name, dir_fd=parent)

        return self._in_parent(target, unlink)

    def path_rename(
        self, caller: wasmtime.Caller, fd: int, old_ptr: int, old_len: int, new_fd: int, new_ptr: int, new_len: int
    ) -> int:
        return self._between(
            self._target(caller, fd, old_ptr, old_len),
            rights.Rights.PATH_RENAME_SOURCE,
            self._target(caller, new_fd, new_ptr, new_len),
            rights.Rights.PATH_RENAME_TARGET,
            lambda a, src, b, dst: os.rename(a, b, src_dir_fd=src, dst_dir_fd=dst),
        )

    def path_link(
        self,
        caller: wasmtime.Caller,
        old_fd: int,
        flags: int,
        old_ptr: int,
        old_len: int,
        new_fd: int,
        new_ptr: int,
        new_len: int,
    ) -> int:
        return self._between(
            self._target(caller, old_fd, old_ptr, old_len),
            rights.Rights.PATH_LINK_SOURCE,
            self._target(caller, new_fd, new_ptr, new_len),
            rights.Rights.PATH_LINK_TARGET,
            lambda a, src, b, dst: os.link(a, b, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False),
        )

    def _between(
        self,
        source: _Target,
        source_needs: rights.Rights,
        target: _Target,
        target_needs: rights.Rights,
        action: Callable[[str, int, str, int], None],
    ) -> int:
        """A two-path operation (rename, link): both rights checked, both parents reached without links."""
        self._require(source, source_needs)
        self._require(target, target_needs)
        return self._in_parent(
            source, lambda src: _check(self._in_parent(target, lambda dst: action(source.name, src, target.name, dst)))
        )

    def path_symlink(
        self, caller: wasmtime.Caller, old_ptr: int, old_len: int, fd: int, new_ptr: int, new_len: int
    ) -> int:
        link = self._target(caller, fd, new_ptr, new_len)
        self._require(link, rights.Rights.PATH_SYMLINK)
        contents = self._string(caller, old_ptr, old_len)
        # The link must point inside the same pre-opened directory, as wasmtime requires.
        if not contents or contents.startswith("/") or "\x00" in contents:
            return ENOTCAPABLE
        depth = len(link.parts) - 1
        for part in contents.split("/"):
            if part == "..":
                depth -= 1
                if depth < 0:
                    return ENOTCAPABLE
            elif part not in ("", "."):
                depth += 1
        return self._in_parent(link, lambda parent: os.symlink(contents, link.name, dir_fd=parent))

    def path_open_check(
        self, caller: wasmtime.Caller, fd: int, dirflags: int, ptr: int, length: int, oflags: int, base: int
    ) -> int:
        """Veracruz's ``path_open`` rules on the grant covering the (link-resolved) path.

        Returns the rights mask the new descriptor may hold (the shim ANDs the
        requested rights with it before wasmtime opens), or ``-errno``. wasmtime
        opens for writing when the rights ask for any of :data:`WRITE_RIGHTS` and
        otherwise for *reading*, whatever FD_READ says: so an open that the mask
        leaves without a write right is refused here unless the grant holds
        FD_READ (Veracruz would hand back a descriptor that cannot read; the
        data stays out of reach either way). A directory is opened only with
        FD_READDIR, which listing it needs, whether or not ``O_DIRECTORY`` asks
        for one (wasmtime lists any directory descriptor).
        """
        try:
            target = self._target(caller, fd, ptr, length, allow_root=True, keep_dotdot=True)
            target = self._resolve(target, dirflags & LOOKUPFLAGS_SYMLINK_FOLLOW)
        except _Errno as exc:
            return -exc.code
        grant = rights.covering_grant(self.program.grants, target.guest_path)
        held = grant[1] if grant is not None else rights.Rights(0)
        needs = rights.Rights.PATH_OPEN
        if oflags & OFLAGS_CREAT and not _exists(target):
            needs |= rights.Rights.PATH_CREATE_FILE
        if oflags & OFLAGS_TRUNC:
            needs |= rights.Rights.PATH_FILESTAT_SET_SIZE
        if oflags & OFLAGS_DIRECTORY or _is_directory(target):
            needs |= rights.Rights.FD_READDIR
        if needs & ~held:
            return -ENOTCAPABLE
        mask = int(held) & WASI_RIGHTS
        if not held & rights.Rights.FD_READ and not base & mask & WRITE_RIGHTS:
            return -ENOTCAPABLE  # wasmtime would open it for reading
        return mask

    def fd_readdir_check(self, fd: int) -> int:
        """Listing a pre-opened directory needs FD_READDIR on its grant (other directories were checked when opened)."""
        preopen = self.preopens.get(fd)
        if preopen is None:
            return ESUCCESS
        grant = rights.covering_grant(self.program.grants, preopen.guest_path)
        if grant is None or not grant[1] & rights.Rights.FD_READDIR:
            return ENOTCAPABLE
        return ESUCCESS

    def fd_closed(self, fd: int) -> None:
        self.preopens.pop(fd, None)

    def fd_renumbered(self, fd: int, to: int) -> None:
        if fd != to:
            moved = self.preopens.pop(fd, None)
            self.preopens.pop(to, None)
            if moved is not None:
                self.preopens[to] = moved

    @staticmethod
    def _resolve(target: _Target, follow_last: int) -> _Target:
        """``target`` with the links on its way replaced by what they name (as wasmtime will follow them).

        Lexical, one component at a time from the pre-opened directory, never
        above it; a missing component ends the walk (what follows is created).
        """
        root = target.preopen.host_dir
        done: list[str] = []
        todo = list(target.parts)
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise _Errno(ENOTCAPABLE)
                done.pop()
                continue
            host = os.path.join(root, *done, part)
            try:
                info = os.lstat(host)
            except OSError:
                done.append(part)
                continue
            if stat.S_ISLNK(info.st_mode) and (todo or follow_last):
                hops += 1
                contents = os.readlink(host)
                if hops > MAX_LINK_HOPS:
                    raise _Errno(ELOOP)
                if contents.startswith("/"):
                    raise _Errno(ENOTCAPABLE)
                todo = contents.split("/") + todo
                continue
            done.append(part)
        return _Target(target.preopen, done)

    def path_filestat_get(self, caller: wasmtime.Caller, fd: int, flags: int, ptr: int, length: int, out: int) -> int:
        """``stat`` with the clock off: the host's answer with every timestamp zero (links are not followed)."""
        target = self._target(caller, fd, ptr, length, allow_root=True)
        try:
            directory = nofollow.open_dir(target.preopen.host_dir, target.parts[:-1])
        except nofollow.LinkRefused:
            return ELOOP
        except OSError as exc:
            return _FROM_HOST.get(exc.errno or 0, EIO)
        try:
            info = os.stat(target.name if target.parts else ".", dir_fd=directory, follow_symlinks=False)
        except OSError as exc:
            return _FROM_HOST.get(exc.errno or 0, EIO)
        finally:
            os.close(directory)
        return self._write(caller, _filestat(info), out)

    def fd_filestat_get(self, caller: wasmtime.Caller, fd: int, out: int) -> int:
        """``fstat`` with the clock off: streams and pre-opened directories only, timestamps zero."""
        if fd in (0, 1, 2):
            record = struct.pack("<QQBxxxxxxxQQQQQ", 0, 0, FILETYPE_CHARACTER_DEVICE, 1, 0, 0, 0, 0)
        elif fd in self.preopens:
            record = _filestat(os.stat(self.preopens[fd].host_dir, follow_symlinks=False))
        else:
            return ENOTCAPABLE  # an opened file's timestamps would tell the time; stat() it by path instead
        return self._write(caller, record, out)

    def poll_oneoff(self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int) -> int:
        """Files are always ready; clock waits are bounded by the time limit (then the run stops)."""
        if count <= 0 or in_ptr % 8 or out_ptr % 8 or nevents_ptr % 4:
            return EINVAL  # wasmtime requires the records aligned too
        memory = self._memory(caller)
        end = in_ptr + count * SUBSCRIPTION_SIZE
        if (
            in_ptr < 0
            or out_ptr < 0
            or end > memory.data_len(caller)
            or out_ptr + count * EVENT_SIZE > memory.data_len(caller)
        ):
            return EINVAL
        raw = memory.read(caller, in_ptr, end)
        ready: list[tuple[int, int]] = []  # (userdata, event type)
        earliest: tuple[float, int] | None = None  # (seconds to wait, userdata)
        for index in range(count):
            sub = raw[index * SUBSCRIPTION_SIZE : (index + 1) * SUBSCRIPTION_SIZE]
            userdata, tag = struct.unpack_from("<QB", sub, 0)
            if tag in (EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE):
                ready.append((userdata, tag))
            elif tag == EVENTTYPE_CLOCK:
                clock_id, timeout, _precision, flags = struct.unpack_from("<IxxxxQQH", sub, 16)
                wait = timeout / 1e9
                if flags & SUBCLOCKFLAG_ABSTIME:
                    if not self.enable_clock:
                        return ENOTCAPABLE  # waking at an absolute time would tell the time
                    now = time.time_ns() if clock_id == 0 else time.monotonic_ns()
                    wait = max(0, timeout - now) / 1e9
                if earliest is None or wait < earliest[0]:
                    earliest = (wait, userdata)
            else:
                return EINVAL
        if not ready and earliest is not None:
            remaining = self.deadline - time.monotonic()
            if earliest[0] >= remaining:
                self.cancel.wait(max(0.0, remaining))
                raise TimeLimitExceeded()
            if self.cancel.wait(earliest[0]):
                raise TimeLimitExceeded()
            ready.append((earliest[1], EVENTTYPE_CLOCK))
        events = b"".join(struct.pack("<QHBxxxxxQHxxxxxx", userdata, 0, kind, 0, 0) for userdata, kind in ready)
        memory.write(caller, events, out_ptr)
        memory.write(caller, struct.pack("<I", len(ready)), nevents_ptr)
        return ESUCCESS


SHIM_WAT = f"""(module
  (import "{GUARD_MODULE}" "memory" (memory 0))
  (import "{GUARD_MODULE}" "path_open_check" (func $check (param i32 i32 i32 i32 i32 i64) (result i64)))
  (import "{GUARD_MODULE}" "fd_readdir_check" (func $readdir_check (param i32) (result i32)))
  (import "{GUARD_MODULE}" "fd_closed" (func $closed (param i32)))
  (import "{GUARD_MODULE}" "fd_renumbered" (func $renumbered (param i32 i32)))
  (import "{MODULE}" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "{MODULE}" "fd_close" (func $close (param i32) (result i32)))
  (import "{MODULE}" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
  (import "{MODULE}" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "path_open") (param $fd i32) (param $dirflags i32) (param $ptr i32) (param $len i32) (param $oflags i32)
      (param $base i64) (param $inheriting i64) (param $fdflags i32) (param $out i32) (result i32)
    (local $mask i64)
    (local.set $mask (call $check (local.get $fd) (local.get $dirflags) (local.get $ptr) (local.get $len)
                               (local.get $oflags) (local.get $base)))
    (if (i64.lt_s (local.get $mask) (i64.const 0))
      (then (return (i32.wrap_i64 (i64.sub (i64.const 0) (local.get $mask))))))
    (call $open (local.get $fd) (local.get $dirflags) (local.get $ptr) (local.get $len) (local.get $oflags)
      (i64.and (local.get $base) (local.get $mask)) (i64.and (local.get $inheriting) (local.get $mask))
      (local.get $fdflags) (local.get $out)))
  (func (export "fd_close") (param $fd i32) (result i32)
    (local $code i32)
    (local.set $code (call $close (local.get $fd)))
    (if (i32.eqz (local.get $code)) (then (call $closed (local.get $fd))))
    (local.get $code))
  (func (export "fd_renumber") (param $fd i32) (param $to i32) (result i32)
    (local $code i32)
    (local.set $code (call $renumber (local.get $fd) (local.get $to)))
    (if (i32.eqz (local.get $code)) (then (call $renumbered (local.get $fd) (local.get $to))))
    (local.get $code))
  (func (export "fd_readdir")
        (param $fd i32) (param $buf i32) (param $len i32) (param $cookie i64) (param $out i32) (result i32)
    (local $code i32)
    (local.set $code (call $readdir_check (local.get $fd)))
    (if (local.get $code) (then (return (local.get $code))))
    (call $readdir (local.get $fd) (local.get $buf) (local.get $len) (local.get $cookie) (local.get $out))))"""


def import_memory(wasm: bytes) -> tuple[bytes, wasmtime.MemoryType] | None:
    """``wasm`` with its one defined memory imported from ``ipoc_guard.memory`` instead, and that memory's type.

    None when the module does not define exactly one plain 32-bit memory (it
    then runs unchanged and may not open files). Only the import and memory
    sections change; every index stays the same.
    """
    if wasm[:8] != b"\0asm\x01\0\0\0":
        return None
    sections: list[tuple[int, bytes]] = []
    position = 8
    try:
        while position < len(wasm):
            kind = wasm[position]
            size, position = _leb(wasm, position + 1)
            sections.append((kind, wasm[position : position + size]))
            position += size
        memories = [payload for kind, payload in sections if kind == 5]
        if len(memories) != 1:
            return None
        count, at = _leb(memories[0], 0)
        if count != 1:
            return None
        limits = memories[0][at:]
        flags, at = _leb(limits, 0)
        if flags not in (0, 1):
            return None  # shared or 64-bit memories are disabled anyway
        minimum, at = _leb(limits, at)
        maximum = _leb(limits, at)[0] if flags == 1 else None
    except IndexError:
        return None
    entry = _name(GUARD_MODULE.encode()) + _name(b"memory") + b"\x02" + limits
    imports = [payload for kind, payload in sections if kind == 2]
    if imports:
        count, at = _leb(imports[0], 0)
        new_imports = _uleb(count + 1) + imports[0][at:] + entry
    else:
        new_imports = _uleb(1) + entry
    out = [wasm[:8]]
    placed = False
    for kind, payload in sections:
        if kind == 5:
            continue
        if kind == 2:
            payload, placed = new_imports, True
        elif not placed and kind not in (0, 1):
            out.append(b"\x02" + _uleb(len(new_imports)) + new_imports)
            placed = True
        out.append(bytes([kind]) + _uleb(len(payload)) + payload)
    if not placed:
        out.append(b"\x02" + _uleb(len(new_imports)) + new_imports)
    return b"".join(out), wasmtime.MemoryType(wasmtime.Limits(minimum, maximum))


def _leb(data: bytes, position: int) -> tuple[int, int]:
    """An unsigned LEB128 at ``position``: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _name(text: bytes) -> bytes:
    return _uleb(len(text)) + text


def _filestat(info: os.stat_result) -> bytes:
    """A WASI ``filestat`` with zero timestamps."""
    mode = info.st_mode
    kind = (
        FILETYPE_DIRECTORY
        if stat.S_ISDIR(mode)
        else FILETYPE_REGULAR_FILE
        if stat.S_ISREG(mode)
        else FILETYPE_SYMBOLIC_LINK
        if stat.S_ISLNK(mode)
        else FILETYPE_UNKNOWN
    )
    return struct.pack("<QQBxxxxxxxQQQQQ", 0, info.st_ino, kind, info.st_nlink, info.st_size, 0, 0, 0)


def _errno_of(function: Callable[..., int]) -> Callable[..., int]:
    """Turn an internal refusal into the errno the program sees."""

    def call(*args: int) -> int:
        try:
            return function(*args)
        except _Errno as exc:
            return exc.code

    return call


def _check(code: int) -> None:
    if code != ESUCCESS:
        raise _Errno(code)


def _is_directory(target: _Target) -> bool:
    """Whether a resolved target names a directory (links unfollowed: they were resolved already)."""
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(target.preopen.host_dir, *target.parts)).st_mode)
    except OSError:
        return False


def _exists(target: _Target) -> bool:
    """Whether a resolved target names something (links unfollowed)."""
    try:
        os.lstat(os.path.join(target.preopen.host_dir, *target.parts))
    except OSError:
        return False
    return True


def _is_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False

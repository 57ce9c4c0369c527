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
=====================  ==========================================

They act only through a pre-opened directory's descriptor (what wasi-libc
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
from dataclasses import dataclass
from typing import Callable

import wasmtime

from ipoc import rights
from ipoc.policy import Principal
from runtime import nofollow
from runtime.vfs import Preopen

MODULE = "wasi_snapshot_preview1"
FIRST_PREOPEN_FD = 3  # wasmtime numbers pre-opened directories from 3, in the order they are added

# WASI errno values (wasi_snapshot_preview1).
ESUCCESS, EACCES, EBADF, EEXIST, EINVAL, EIO, EISDIR, ELOOP = 0, 2, 8, 20, 28, 29, 31, 32
ENAMETOOLONG, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, EXDEV, ENOTCAPABLE = 37, 44, 54, 55, 63, 75, 76
_FROM_HOST = {
    errno.EACCES: EACCES, errno.EEXIST: EEXIST, errno.EINVAL: EINVAL, errno.EISDIR: EISDIR, errno.ELOOP: ELOOP,
    errno.ENAMETOOLONG: ENAMETOOLONG, errno.ENOENT: ENOENT, errno.ENOTDIR: ENOTDIR, errno.ENOTEMPTY: ENOTEMPTY,
    errno.EPERM: EPERM, errno.EXDEV: EXDEV, errno.EBADF: EBADF,
}

EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE = 0, 1, 2
SUBSCRIPTION_SIZE, EVENT_SIZE = 48, 32
SUBCLOCKFLAG_ABSTIME = 1
FILETYPE_UNKNOWN, FILETYPE_CHARACTER_DEVICE, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_SYMBOLIC_LINK = 0, 2, 3, 4, 7


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
        self, program: Principal, preopens: list[Preopen], *, deadline: float, cancel: threading.Event, enable_clock: bool = True
    ) -> None:
        self.program = program
        self.preopens = {FIRST_PREOPEN_FD + i: p for i, p in enumerate(preopens)}
        self.deadline = deadline  # time.monotonic() value
        self.cancel = cancel
        self.enable_clock = enable_clock

    def install(self, linker: wasmtime.Linker) -> None:
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
        linker.allow_shadowing = True
        for name, params, function in functions:
            linker.define_func(MODULE, name, wasmtime.FuncType(params, [i32]), _errno_of(function), access_caller=True)
        linker.allow_shadowing = False

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise _Errno(EINVAL)
        return memory

    def _string(self, caller: wasmtime.Caller, ptr: int, length: int) -> str:
        memory = self._memory(caller)
        if ptr < 0 or length < 0 or ptr + length > memory.data_len(caller):
            raise _Errno(EINVAL)
        try:
            return memory.read(caller, ptr, ptr + length).decode()
        except UnicodeDecodeError:
            raise _Errno(EINVAL) from None

    def _target(self, caller: wasmtime.Caller, fd: int, ptr: int, length: int, *, allow_root: bool = False) -> _Target:
        """Resolve a path relative to a pre-opened directory, lexically, never above it."""
        preopen = self.preopens.get(fd)
        if preopen is None:
            raise _Errno(ENOTCAPABLE)
        path = self._string(caller, ptr, length)
        if path.startswith("/") or "\x00" in path:
            raise _Errno(ENOTCAPABLE)
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise _Errno(ENOTCAPABLE)
                parts.pop()
                continue
            if len(part.encode()) > nofollow.NAME_MAX:
                raise _Errno(ENAMETOOLONG)
            parts.append(part)
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

    def path_rename(self, caller: wasmtime.Caller, fd: int, old_ptr: int, old_len: int, new_fd: int, new_ptr: int, new_len: int) -> int:
        return self._between(
            self._target(caller, fd, old_ptr, old_len), rights.Rights.PATH_RENAME_SOURCE,
            self._target(caller, new_fd, new_ptr, new_len), rights.Rights.PATH_RENAME_TARGET,
            lambda a, src, b, dst: os.rename(a, b, src_dir_fd=src, dst_dir_fd=dst),
        )

    def path_link(self, caller: wasmtime.Caller, old_fd: int, flags: int, old_ptr: int, old_len: int, new_fd: int, new_ptr: int, new_len: int) -> int:
        return self._between(
            self._target(caller, old_fd, old_ptr, old_len), rights.Rights.PATH_LINK_SOURCE,
            self._target(caller, new_fd, new_ptr, new_len), rights.Rights.PATH_LINK_TARGET,
            lambda a, src, b, dst: os.link(a, b, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False),
        )

    def _between(
        self, source: _Target, source_needs: rights.Rights, target: _Target, target_needs: rights.Rights,
        action: Callable[[str, int, str, int], None],
    ) -> int:
        """A two-path operation (rename, link): both rights checked, both parents reached without links."""
        self._require(source, source_needs)
        self._require(target, target_needs)
        return self._in_parent(
            source, lambda src: _check(self._in_parent(target, lambda dst: action(source.name, src, target.name, dst)))
        )

    def path_symlink(self, caller: wasmtime.Caller, old_ptr: int, old_len: int, fd: int, new_ptr: int, new_len: int) -> int:
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
        self._memory(caller).write(caller, _filestat(info), out)
        return ESUCCESS

    def fd_filestat_get(self, caller: wasmtime.Caller, fd: int, out: int) -> int:
        """``fstat`` with the clock off: streams and pre-opened directories only, timestamps zero."""
        if fd in (0, 1, 2):
            record = struct.pack("<QQBxxxxxxxQQQQQ", 0, 0, FILETYPE_CHARACTER_DEVICE, 1, 0, 0, 0, 0)
        elif fd in self.preopens:
            record = _filestat(os.stat(self.preopens[fd].host_dir, follow_symlinks=False))
        else:
            return ENOTCAPABLE  # an opened file's timestamps would tell the time; stat() it by path instead
        self._memory(caller).write(caller, record, out)
        return ESUCCESS

    def poll_oneoff(self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int) -> int:
        """Files are always ready; clock waits are bounded by the time limit (then the run stops)."""
        if count <= 0 or in_ptr % 8 or out_ptr % 8 or nevents_ptr % 4:
            return EINVAL  # wasmtime requires the records aligned too
        memory = self._memory(caller)
        end = in_ptr + count * SUBSCRIPTION_SIZE
        if in_ptr < 0 or out_ptr < 0 or end > memory.data_len(caller) or out_ptr + count * EVENT_SIZE > memory.data_len(caller):
            return EINVAL
        raw = memory.read(caller, in_ptr, end)
        ready: list[tuple[int, int]] = []  # (userdata, event type)
        earliest: tuple[float, int] | None = None  # (seconds to wait, userdata)
        for index in range(count):
            sub = raw[index * SUBSCRIPTION_SIZE:(index + 1) * SUBSCRIPTION_SIZE]
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


def _filestat(info: os.stat_result) -> bytes:
    """A WASI ``filestat`` with zero timestamps."""
    mode = info.st_mode
    kind = (
        FILETYPE_DIRECTORY if stat.S_ISDIR(mode) else FILETYPE_REGULAR_FILE if stat.S_ISREG(mode)
        else FILETYPE_SYMBOLIC_LINK if stat.S_ISLNK(mode) else FILETYPE_UNKNOWN
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


def _is_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False

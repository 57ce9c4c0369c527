"""Reach files under a directory without ever following a symbolic link.

A program granted a writable directory may plant links there (when its rights
include PATH_SYMLINK). Every host-side walk of the enclave tree therefore opens
one component at a time relative to its parent's descriptor, with O_NOFOLLOW,
so a link anywhere on the way is refused (ELOOP/ENOTDIR) instead of resolved:
the name that was authorised is the file that is touched.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NAME_MAX = 255  # bytes per path component (Linux and WASI hosts)


class LinkRefused(Exception):
    """A component on the way is a symbolic link."""


def open_dir(root: str | os.PathLike[str], parts: Sequence[str], *, create: bool = False) -> int:
    """Open ``root/parts...`` as a directory descriptor, refusing links; create missing levels if asked.

    ``parts`` must be plain names (no ``/``, ``.`` or ``..``). The caller closes the result.
    """
    fd = os.open(root, DIR_FLAGS)
    try:
        for part in parts:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile (or a link: the open below refuses it)
                child = _open_child_dir(fd, part)
            except OSError as exc:
                _raise_if_link(fd, part, exc)
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child_dir(parent: int, name: str) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        _raise_if_link(parent, name, exc)
        raise


def _raise_if_link(parent: int, name: str, exc: OSError) -> None:
    """O_NOFOLLOW|O_DIRECTORY on a link fails with ELOOP or ENOTDIR: tell a link from a file."""
    if exc.errno == errno.ELOOP:
        raise LinkRefused(name) from None
    if exc.errno == errno.ENOTDIR:
        try:
            is_link = stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            return
        if is_link:
            raise LinkRefused(name) from None


@contextmanager
def parent_dir(root: str | os.PathLike[str], parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
    """The descriptor of the directory holding ``parts[-1]``, closed on exit."""
    fd = open_dir(root, parts[:-1], create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(parent: int, name: str, flags: int, mode: int = 0o600) -> int:
    """Open ``name`` in ``parent`` with O_NOFOLLOW: a link there raises :class:`LinkRefused`."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LinkRefused(name) from None
        raise

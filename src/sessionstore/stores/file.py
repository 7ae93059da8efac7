"""FileSessionStore: the embedded default, one JSON file per session in a directory.

Layout. The key ``prefix + encode(id) + ".json"`` is the file's path under the root.
A file name is at most 255 bytes, a key up to 1024, so a longer name is cut into
directory segments of 250 characters, each ending in ``+`` (a character ``encode``
never writes), and the rest is the file::

    p/short-id.json
    p/<250 chars of the name>+/<next 250>+/<the rest>.json

Short ids stay plain ``encode(id).json`` files; the listing walks the ``+``
directories back into keys.

Writes are atomic (a temporary file, fsync, rename, fsync of the directory), so a
crash leaves the old snapshot or the new one, never a torn file. The lock rule: every
write and delete takes an advisory lock (``fcntl.flock``) on ``.sessionstore.lock`` in
the directory that holds the object file. ``flock`` locks the file itself, so every
spelling of one directory (``file:/x?prefix=a`` and ``file:/x/a``, ``/x/sub/..``, a
symlink) takes the same lock, and ``if_version`` / ``if_absent`` are real conditions
across the processes of one machine. Under the lock the temporary file of the
directory is ``.sessionstore.tmp``: what a killed writer leaves there is never listed
and is reused by the next write in that directory.

The version token is the file's modification time (in ns), inode and size, all from
one ``stat``: a listing yields it, and ``has`` is a ``stat``. Each write sets the
modification time strictly above the one it replaces, so a token is never reused for
one path. Blocking file I/O runs in worker threads, never on the event loop; a call
through the sync API does it on the caller's thread (``flock`` locks exclude the
threads of one process too: each opens the lock file itself).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

from sessionstore.base import ObjectSessionStore
from sessionstore.errors import StoreConfigError
from sessionstore.keys import SUFFIX
from sessionstore.provider import (
    ListedObject,
    ObjectInfo,
    Page,
    StoredObject,
    StoreOptions,
    _AccessDenied,
    _Failed,
    _Fault,
    _NotFound,
    _PreconditionFailed,
    _Transient,
)

__all__ = ["FileSessionStore"]

_LOCK_NAME = ".sessionstore.lock"
_TMP_NAME = ".sessionstore.tmp"
_NAME_MAX = 255  # bytes in a file name on Linux and macOS file systems
_SEGMENT = _NAME_MAX - len(SUFFIX)  # characters of a long name per directory
_SEGMENT_MARK = "+"  # ends a segment directory; encode() never writes it
_MAX_SEGMENTS = 4  # a 1024-byte key needs 4 (a 1019-character name); deeper is not ours


def _version(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:x}-{st.st_ino:x}-{st.st_size:x}"


def _info(st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(_version(st), datetime.fromtimestamp(st.st_mtime, UTC), {}, st.st_size)


def _relative_path(key: str) -> str:
    """The path of ``key`` under the root: long names cut into segment directories."""
    head, _, name = key.rpartition("/")
    if len(name.encode("utf-8")) <= _NAME_MAX or not name.endswith(SUFFIX):
        return key
    stem = name[: -len(SUFFIX)]
    cut = (len(stem) - 1) // _SEGMENT * _SEGMENT
    segments = [stem[i : i + _SEGMENT] + _SEGMENT_MARK for i in range(0, cut, _SEGMENT)]
    parts = [head] if head else []
    return "/".join([*parts, *segments, stem[cut:] + SUFFIX])


def _walk(directory: str, stem: str, depth: int) -> Iterator[tuple[str, os.stat_result]]:
    """(name, stat) of every ``.json`` file in ``directory`` and its segment directories.

    ``stem`` is the part of the name the segment directories above already hold.
    """
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return  # not created yet, or removed while listing
    for entry in entries:
        name = entry.name
        try:
            if name.endswith(SUFFIX) and (name != SUFFIX or not stem) and entry.is_file():
                yield stem + name, entry.stat()
            elif (
                depth < _MAX_SEGMENTS
                and len(name) == _SEGMENT + 1
                and name.endswith(_SEGMENT_MARK)
                and entry.is_dir(follow_symlinks=False)
            ):
                yield from _walk(entry.path, stem + name[:-1], depth + 1)
        except FileNotFoundError:
            continue  # deleted while listing


class FileSessionStore(ObjectSessionStore):
    """Sessions as files under ``root`` (created on first use).

    Accepts every id whose key fits in 1024 bytes, as the cloud stores do (the module
    docstring describes how long names are laid out).

    Raises:
        StoreConfigError: ``root`` is not a path, or a base option is bad.
    """

    client_follows_loop = False  # no client: worker threads of the running loop

    provider = "file"

    def __init__(
        self, root: str | os.PathLike[str], *, prefix: str = "", **options: Unpack[StoreOptions]
    ) -> None:
        super().__init__(prefix=prefix, **options)
        if not isinstance(root, str | os.PathLike) or not os.fspath(root):
            raise StoreConfigError(f"root must be a directory path, not {root!r}")
        self.root = Path(root).expanduser().absolute()

    @classmethod
    def _url_arguments(
        cls, scheme: str, host: str, path: str, url: str
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``file:///abs/dir`` or ``file:relative/dir``: the path is the root."""
        if host not in ("", "localhost"):
            raise StoreConfigError(
                f"file URL {url!r} names host {host!r}; use file:///abs/path or file:relative/path"
            )
        if not path:
            raise StoreConfigError(f"file URL {url!r} has no directory")
        return (path,), {}

    @property
    def location(self) -> str:
        """The root directory as a ``file://`` URL."""
        return self.root.as_uri()

    def _classify(self, exc: Exception) -> type[_Fault]:
        if isinstance(exc, FileNotFoundError):
            return _NotFound
        if isinstance(exc, PermissionError):
            return _AccessDenied
        if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY):
            return _Transient
        return _Failed

    def _error_detail(self, exc: Exception) -> str:
        if isinstance(exc, OSError):
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return type(exc).__name__

    async def _open(self) -> None:
        await self._blocking(self._open_sync)

    def _open_sync(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _relative_path(key)

    @contextlib.contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        """Hold the lock of ``directory``, the one that holds the object file."""
        fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _put_sync(self, key: str, body: bytes, if_version: str | None, if_absent: bool) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(path.parent):
            try:
                current: os.stat_result | None = os.stat(path)
            except FileNotFoundError:
                current = None
            if if_absent and current is not None:
                raise _PreconditionFailed("exists")
            if if_version is not None and (current is None or _version(current) != if_version):
                raise _PreconditionFailed("version mismatch")
            # Strictly after the replaced file's time: a version token never repeats.
            mtime = max(time.time_ns(), current.st_mtime_ns + 1 if current else 0)
            tmp = path.parent / _TMP_NAME
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            try:
                with open(fd, "wb", closefd=False) as f:
                    f.write(body)
                os.utime(fd, ns=(mtime, mtime))
                os.fsync(fd)
                st = os.fstat(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return _version(st)

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        return await self._blocking(self._put_sync, key, body, if_version, if_absent)

    def _get_sync(self, key: str) -> StoredObject:
        with open(self._path(key), "rb") as f:
            st = os.fstat(f.fileno())
            self._check_stored_size(key, st.st_size)
            body = f.read()
        return StoredObject(body, _info(st))

    async def _get(self, key: str) -> StoredObject:
        return await self._blocking(self._get_sync, key)

    async def _head(self, key: str) -> ObjectInfo:
        # A stat: existence and version, whatever the size (only a load enforces it).
        return _info(await self._blocking(os.stat, self._path(key)))

    def _delete_sync(self, key: str, if_version: str | None) -> None:
        path = self._path(key)
        # No directory: FileNotFoundError from the lock, which means absent.
        with self._locked(path.parent):
            if if_version is not None and _version(os.stat(path)) != if_version:
                raise _PreconditionFailed("version mismatch")
            path.unlink()

    async def _delete(self, key: str, *, if_version: str | None) -> None:
        await self._blocking(self._delete_sync, key, if_version)

    def _list_sync(self, prefix: str, page_size: int, token: str | None) -> Page:
        entries = _walk(str(self.root / prefix), "", 0)
        found = sorted(
            (entry for entry in entries if token is None or entry[0] > token),
            key=lambda entry: entry[0],
        )
        objects = [
            ListedObject(
                prefix + name,
                datetime.fromtimestamp(st.st_mtime, UTC),
                _version(st),
                st.st_size,
            )
            for name, st in found[:page_size]
        ]
        return Page(objects, found[page_size - 1][0] if len(found) > page_size else None)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        return await self._blocking(self._list_sync, prefix, page_size, token)

"""FileSessionStore: the embedded default, one JSON file per session in a directory.

Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a crash
leaves the old snapshot or the new one, never a torn file. Writes and deletes of one
store directory are serialized by an advisory lock (``fcntl.flock``) on
``<root>/.sessionstore.lock``, which makes ``if_version`` / ``if_absent`` real
conditions across the processes of one machine. The version token is a hash of the
file's content. Blocking file I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

from sessionstore.base import ObjectSessionStore
from sessionstore.errors import StoreConfigError
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


def _version(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


class FileSessionStore(ObjectSessionStore):
    """Sessions as files under ``root`` (created on first use).

    The key ``prefix + encode(id) + ".json"`` is the file's path relative to ``root``.

    Raises:
        StoreConfigError: ``root`` is not a path, or a base option is bad.
    """

    provider = "file"
    max_name_bytes = 255  # NAME_MAX of Linux and macOS file systems

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
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _current_version(self, path: Path) -> str | None:
        try:
            return _version(path.read_bytes())
        except FileNotFoundError:
            return None

    def _put_sync(self, key: str, body: bytes, if_version: str | None, if_absent: bool) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if if_absent or if_version is not None:
                current = self._current_version(path)
                if if_absent and current is not None:
                    raise _PreconditionFailed("exists")
                if if_version is not None and current != if_version:
                    raise _PreconditionFailed("version mismatch")
            tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return _version(body)

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
        return await asyncio.to_thread(self._put_sync, key, body, if_version, if_absent)

    def _get_sync(self, key: str) -> StoredObject:
        with open(self._path(key), "rb") as f:
            st = os.fstat(f.fileno())
            self._check_stored_size(key, st.st_size)
            body = f.read()
        return StoredObject(body, ObjectInfo(_version(body), _mtime(st), {}, len(body)))

    async def _get(self, key: str) -> StoredObject:
        return await asyncio.to_thread(self._get_sync, key)

    async def _head(self, key: str) -> ObjectInfo:
        # A content hash needs the content: a HEAD of a file reads it.
        return (await self._get(key)).info

    def _delete_sync(self, key: str, if_version: str | None) -> None:
        path = self._path(key)
        with self._locked():
            if if_version is not None:
                current = self._current_version(path)
                if current is None:
                    raise _NotFound("no such session")
                if current != if_version:
                    raise _PreconditionFailed("version mismatch")
            path.unlink()

    async def _delete(self, key: str, *, if_version: str | None) -> None:
        await asyncio.to_thread(self._delete_sync, key, if_version)

    def _list_sync(self, prefix: str, page_size: int, token: str | None) -> Page:
        directory = self.root / prefix if prefix else self.root
        try:
            entries = [e for e in os.scandir(directory) if e.name.endswith(".json") and e.is_file()]
        except FileNotFoundError:
            return Page([])
        names = sorted(e.name for e in entries if token is None or e.name > token)
        by_name = {e.name: e for e in entries}
        chunk = names[:page_size]
        objects = []
        for name in chunk:
            try:
                st = by_name[name].stat()
            except FileNotFoundError:
                continue  # deleted while listing
            objects.append(ListedObject(prefix + name, _mtime(st), None, st.st_size))
        return Page(objects, chunk[-1] if len(names) > page_size else None)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        return await asyncio.to_thread(self._list_sync, prefix, page_size, token)

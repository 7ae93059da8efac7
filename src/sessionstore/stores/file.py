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

Modes. What the store creates (session, lock and temporary files, directories) is
private by default: files 0600 and directories 0700, created with that mode, so the
umask can only take bits away. ``file_mode`` (0o6GO, G and O each 0, 4 or 6) shares
deliberately: files get exactly that mode, directories the matching search bits
(0o660: 0o770), whatever the umask, as git's ``core.sharedRepository=0660`` does
(under the usual umask 022 a 0o660 would otherwise become 0o640 and lock the group
out); such a directory is made under a temporary name and renamed into place with
its mode, so nobody sees it narrowed. A save keeps the mode of the file it replaces
(its read and write bits, exactly), and its group and owner where the writer may set
them. The lock file is opened read-only where the writer may not write it (``flock``
needs no write access), so one left 0644 by another user locks the directory for
everyone. It is never opened through a symbolic link: a link in its place is an error.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Unpack

from sessionstore.base import ObjectSessionStore
from sessionstore.errors import StoreConfigError
from sessionstore.keys import SUFFIX
from sessionstore.provider import (
    AccessDenied,
    Capabilities,
    Condition,
    Failed,
    Fault,
    ListedObject,
    NotFound,
    ObjectInfo,
    Page,
    StoredObject,
    StoreOptions,
    Transient,
)
from sessionstore.urlparams import UrlParams

__all__ = ["FileSessionStore"]

_LOCK_NAME = ".sessionstore.lock"
_TMP_NAME = ".sessionstore.tmp"
_STAGING_PREFIX = ".sessionstore.mkdir-"  # a directory being made; never listed
_NAME_MAX = 255  # bytes in a file name on Linux and macOS file systems
_SEGMENT = _NAME_MAX - len(SUFFIX)  # characters of a long name per directory
_SEGMENT_MARK = "+"  # ends a segment directory; encode() never writes it
_MAX_SEGMENTS = 4  # a 1024-byte key needs 4 (a 1019-character name); deeper is not ours


_DEFAULT_MODE = 0o600
_MODES = "0o6GO with G and O each 0, 4 or 6 (e.g. 0o600, the default, 0o640 or 0o660)"


def _mode_problem(mode: int) -> str | None:
    """Why ``mode`` is not a session file mode, or None: owner rw, no w without r."""
    if mode & ~0o666 or mode & 0o600 != 0o600:
        return "the owner must read and write, and nobody execute"
    if any(mode >> shift & 0o6 == 0o2 for shift in (0, 3)):
        return "write without read is no use"
    return None


def _check_file_mode(mode: object) -> int | None:
    """``mode`` if it is None or a session file mode, else StoreConfigError."""
    if mode is None:
        return None
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise StoreConfigError(f"file_mode must be an int, {_MODES}, not {mode!r}")
    problem = _mode_problem(mode)
    if problem is not None:
        if re.fullmatch(r"6[0-7]{2}", str(mode)) and not _mode_problem(int(str(mode), 8)):
            problem += f"; write 0o{mode} for the octal mode {mode}"
        raise StoreConfigError(f"file_mode must be {_MODES}, not {oct(mode)} ({problem})")
    return mode


def octal_mode(value: str) -> int:
    """A URL's ``file_mode``: three octal digits 6GO (``660``; also ``0660``, ``0o660``)."""
    digits = value[2:] if value[:2].lower() == "0o" else value
    if not re.fullmatch(r"0?[0-7]{3}", digits) or _mode_problem(int(digits, 8)) is not None:
        raise ValueError("expected an octal mode 6GO with G and O each 0, 4 or 6 (600, 640, 660)")
    return int(digits, 8)


def _directory_mode(file_mode: int) -> int:
    """The directories of ``file_mode``: a search bit for each read bit (0o660: 0o770)."""
    return file_mode | (file_mode & 0o444) >> 2


def _version(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:x}-{st.st_ino:x}-{st.st_size:x}"


def _info(st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(_version(st), datetime.fromtimestamp(st.st_mtime, UTC), {}, st.st_size)


def _relative_path(key: str) -> str:
    """The path of ``key`` under the root: long names cut into segment directories."""
    head, _, name = key.rpartition("/")
    if len(name.encode()) <= _NAME_MAX or not name.endswith(SUFFIX):
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


def _keep_owner(fd: int, replaced: os.stat_result) -> None:
    """Give the new file the replaced one's owner and group, as far as we may."""
    mine = os.fstat(fd)
    uid = -1 if replaced.st_uid == mine.st_uid else replaced.st_uid
    gid = -1 if replaced.st_gid == mine.st_gid else replaced.st_gid
    if uid == gid == -1:
        return
    try:  # best effort: refused (EPERM) or not supported by the file system
        os.fchown(fd, uid, gid)  # both: only a privileged writer
    except OSError:
        if uid != -1 and gid != -1:
            with contextlib.suppress(OSError):
                os.fchown(fd, -1, gid)  # a group the writer belongs to


def _make_exact_directory(path: Path, mode: int) -> None:
    """``path`` as a new directory of exactly ``mode``, or another writer's.

    It is made under a temporary name, given its mode, then renamed into place, so it
    is never seen narrowed by the umask: another user sharing it could not write there.
    """
    staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=path.parent)
    try:
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:  # keep the set-group-id bit a shared parent directory passed on
            os.fchmod(fd, mode | os.fstat(fd).st_mode & stat.S_ISGID)
        finally:
            os.close(fd)
        os.rename(staging, path)  # replaces at most an empty directory made meanwhile
    except OSError as exc:
        os.rmdir(staging)
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not path.is_dir():
            raise
    except BaseException:
        os.rmdir(staging)
        raise


class FileSessionStore(ObjectSessionStore):
    """Sessions as files under ``root`` (created on first use).

    Accepts every id whose key fits in 1024 bytes, as the cloud stores do (the module
    docstring describes how long names are laid out).

    What it creates is private (files 0600, directories 0700; the umask can only narrow
    that). ``file_mode`` shares deliberately: ``0o640`` or ``0o660`` (owner read-write,
    group and others each nothing, read, or read-write) is set exactly whatever the
    umask, and directories get the matching search bits (0o660: 0o770). A save keeps
    the mode of the file it replaces.

    Raises:
        StoreConfigError: ``root`` is not a path, ``file_mode`` is not such a mode,
            or a base option is bad.
    """

    # no client (worker threads of the running loop); a sync API on the caller's thread
    capabilities = Capabilities(sync_client=True, client_follows_loop=False)
    url_path = "directory"

    provider = "file"
    url_params: ClassVar[UrlParams] = {"file_mode": octal_mode}

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        prefix: str = "",
        file_mode: int | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        super().__init__(prefix=prefix, **options)
        if not isinstance(root, str | os.PathLike) or not os.fspath(root):
            raise StoreConfigError(f"root must be a directory path, not {root!r}")
        self.root = Path(root).expanduser().absolute()
        explicit = _check_file_mode(file_mode)
        #: The mode of new files (0o600 unless given); directories get its search bits.
        self.file_mode = _DEFAULT_MODE if explicit is None else explicit
        # An explicit mode is set exactly; the default one is narrowed by the umask.
        self._exact = explicit is not None

    @property
    def location(self) -> str:
        """The root directory as a ``file://`` URL."""
        return self.root.as_uri()

    def _classify(self, exc: Exception) -> type[Fault]:
        if isinstance(exc, FileNotFoundError):
            return NotFound
        if isinstance(exc, PermissionError):
            return AccessDenied
        if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY):
            return Transient
        return Failed

    def _error_detail(self, exc: Exception) -> str:
        if isinstance(exc, OSError):
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return type(exc).__name__

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await self._blocking(self._open_sync)

    def _open_sync(self) -> None:
        self._make_directories(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _relative_path(key)

    def _make_directories(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents with the directory mode.

        Only directories this call creates get the mode; existing ones keep theirs.
        """
        missing: list[Path] = []
        while not directory.is_dir():
            missing.append(directory)
            if directory.parent == directory:
                break
            directory = directory.parent
        mode = _directory_mode(self.file_mode)
        for path in reversed(missing):
            if self._exact:
                _make_exact_directory(path, mode)
            else:
                with contextlib.suppress(FileExistsError):  # another writer made it
                    os.mkdir(path, mode)

    def _create(self, path: Path, flags: int, mode: int, exact: bool) -> int:
        """A new file at ``path`` (``O_EXCL``), never wider than ``mode`` meanwhile."""
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        if exact:
            try:
                os.fchmod(fd, mode)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _open_lock(self, directory: Path) -> int:
        # Never through a link (the store makes none): a dangling one would send this
        # loop round forever (no such file to open, yet one to create), one to another
        # file would lock that file. A link there is an error (ELOOP).
        path = directory / _LOCK_NAME
        while True:
            try:
                return os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            except PermissionError:  # another user's lock file: flock needs no write access
                return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                pass  # not there yet (or no directory: _create says so)
            try:
                return self._create(path, os.O_RDWR, self.file_mode, self._exact)
            except FileExistsError:
                continue  # another writer created it meanwhile

    @contextlib.contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        """Hold the lock of ``directory``, the one that holds the object file."""
        fd = self._open_lock(directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _put_sync(self, key: str, body: bytes, condition: Condition) -> str:
        path = self._path(key)
        self._make_directories(path.parent)
        with self._locked(path.parent):
            try:
                current: os.stat_result | None = os.stat(path)
            except FileNotFoundError:
                current = None
            condition.require(None if current is None else _version(current))
            # Strictly after the replaced file's time: a version token never repeats.
            mtime = max(time.time_ns(), current.st_mtime_ns + 1 if current else 0)
            tmp = path.parent / _TMP_NAME
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # a killed writer's, with its mode and owner: not reused
            if current is None:
                fd = self._create(tmp, os.O_WRONLY, self.file_mode, self._exact)
            else:  # the replaced file's mode (read and write bits), exactly
                fd = self._create(tmp, os.O_WRONLY, stat.S_IMODE(current.st_mode) & 0o666, True)
            try:
                if current is not None:
                    _keep_owner(fd, current)
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
        condition: Condition,
    ) -> str:
        return await self._blocking(self._put_sync, key, body, condition)

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

    def _delete_sync(self, key: str, condition: Condition) -> None:
        path = self._path(key)
        # No directory: FileNotFoundError from the lock, which means absent.
        with self._locked(path.parent):
            if condition.version is not None:
                condition.require(_version(os.stat(path)))
            path.unlink()

    async def _delete(self, key: str, *, condition: Condition) -> None:
        await self._blocking(self._delete_sync, key, condition)

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

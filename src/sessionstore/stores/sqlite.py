"""SQLiteSessionStore: sessions in one table of a SQLite database (stdlib ``sqlite3``).

Layout. The table is agentick's own (``agentick_sessions`` unless ``table=`` says
otherwise; agentick's TypeScript ``SqliteSessionStore`` reads and writes it too)::

    session_id TEXT PRIMARY KEY, snapshot TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL   -- epoch ms

with its index on ``updated_at``. This store adds what conditional writes need and
nothing agentick's statements touch: two nullable columns, ``ss_version`` (the version
token) and ``ss_meta`` (the object metadata, JSON), a table ``sessionstore_counters``
(one counter per table) and two triggers that give a row a new version from the
counter whenever it is inserted or its ``snapshot`` is updated, by anyone (agentick's
upsert too), and clear its metadata (then written again by this store's own write,
in the same transaction). A version is never reused: the counter only grows. Objects
whose keys are not this store's session keys (what other tools put under a prefix)
live in a side table, ``<table>_sessionstore_objects``.

The session id is the row's key as it is, and the snapshot is JSON text; a compressed
snapshot is stored as a BLOB that agentick cannot read, so leave compression off on a
table agentick shares. ``updated_at`` is the last-modified time (agentick's ``load``
moves it; TTL counts from it).

Conditions are real: a conditional write or delete reads the version and writes in one
``BEGIN IMMEDIATE`` transaction, which excludes every other writer of the database, in
this process or another (WAL mode; a busy database is waited for, then retried). One
connection per store serves every thread and event loop behind a lock; a forked child
never uses (nor closes) the parent's connection and opens its own. A new database file
is created private (0600), like the file store's files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Unpack

from sessionstore.base import ObjectSessionStore
from sessionstore.errors import StoreConfigError
from sessionstore.keys import decode_key, make_key
from sessionstore.provider import (
    UNCONDITIONAL,
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

__all__ = ["SQLiteSessionStore"]

DEFAULT_TABLE = "agentick_sessions"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_BUSY_TIMEOUT = 10.0  # seconds a statement waits for another writer's lock
#: Another connection's lock (SQLITE_BUSY, SQLITE_LOCKED): worth waiting for.
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: A file SQLite cannot open, or may not write (SQLITE_CANTOPEN, SQLITE_READONLY).
_DENIED_CODES = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY})


def _table_name(value: str) -> str:
    """A table name: letters, digits and ``_``, not starting with a digit."""
    if not isinstance(value, str) or not _TABLE_NAME.fullmatch(value):
        raise StoreConfigError(
            f"table must be a SQL name of letters, digits and _ (at most 63), not {value!r}"
        )
    return value


def _schema(table: str) -> list[str]:
    """agentick's table and index, then this store's columns' triggers and tables."""
    counter = f"(SELECT value FROM sessionstore_counters WHERE name = '{table}')"
    bump = f"""
        UPDATE sessionstore_counters SET value = value + 1 WHERE name = '{table}';
        UPDATE "{table}" SET ss_version = {counter}, ss_meta = NULL WHERE rowid = NEW.rowid;
    """
    return [
        f"""CREATE TABLE IF NOT EXISTS "{table}" (
            session_id TEXT PRIMARY KEY, snapshot TEXT NOT NULL,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
        f'CREATE INDEX IF NOT EXISTS "idx_{table}_updated_at" ON "{table}"(updated_at)',
        "CREATE TABLE IF NOT EXISTS sessionstore_counters"
        " (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        f"INSERT OR IGNORE INTO sessionstore_counters VALUES ('{table}', 0)",
        f'CREATE TRIGGER IF NOT EXISTS "{table}_ss_insert" AFTER INSERT ON "{table}"'
        f" BEGIN {bump} END",
        f'CREATE TRIGGER IF NOT EXISTS "{table}_ss_update" AFTER UPDATE OF snapshot'
        f' ON "{table}" BEGIN {bump} END',
        f"""CREATE TABLE IF NOT EXISTS "{table}_sessionstore_objects" (
            key TEXT PRIMARY KEY, body BLOB NOT NULL, meta TEXT,
            version INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    ]


class _Database:
    """The store's one connection, opened on first use, shared behind a lock.

    Holds nothing of the store, so a store can be collected while a loop's exit stack
    still holds :meth:`close`.
    """

    _connection: sqlite3.Connection | None

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table
        self._reset()

    def _reset(self) -> None:
        self._pid, self._lock, self._connection = os.getpid(), threading.Lock(), None

    def _renewed(self) -> None:
        # A forked child neither uses nor closes the parent's connection (SQLite's
        # rule), and never waits for a lock another thread of the parent held.
        if self._pid != os.getpid():
            self._reset()

    @contextlib.contextmanager
    def use(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection, locked; in one ``BEGIN IMMEDIATE`` transaction to write."""
        self._renewed()
        with self._lock:
            connection = self._connection or self._connect()
            if not write:
                yield connection
                return
            with _transaction(connection):
                yield connection

    def open(self) -> None:
        """Connect now (the first call would otherwise)."""
        with self.use():
            pass

    def close(self) -> None:
        """Close the connection, if open; the next use opens a new one."""
        self._renewed()
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        with contextlib.suppress(FileExistsError):  # a new database is private
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        connection = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            _unless_busy(lambda: self._prepare(connection))
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """WAL mode, and the schema in one transaction unless another opener made it."""
        connection.execute("PRAGMA journal_mode=WAL")  # a no-op, lock-free, once in WAL
        made = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE name IN (?, ?)",
            (f"{self.table}_ss_update", f"{self.table}_sessionstore_objects"),
        ).fetchone()[0]
        if made == 2:  # made in the one transaction below, so all of it is there
            return
        with _transaction(connection):
            for statement in _schema(self.table):
                connection.execute(statement)
            self._add_columns(connection)

    def _add_columns(self, connection: sqlite3.Connection) -> None:
        columns = {row[1] for row in connection.execute(f'PRAGMA table_info("{self.table}")')}
        for column, kind in (("ss_version", "INTEGER"), ("ss_meta", "TEXT")):
            if column not in columns:
                connection.execute(f'ALTER TABLE "{self.table}" ADD COLUMN {column} {kind}')
        # Rows written before this store first opened the table (agentick's): a
        # version of their own, negative, so the counter never gives it again.
        connection.execute(
            f'UPDATE "{self.table}" SET ss_version = -rowid WHERE ss_version IS NULL'
        )


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction: committed, or rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _code(exc: BaseException) -> int:
    """The primary SQLite result code of an error (0: not one of SQLite's own)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF


def _unless_busy(prepare: Callable[[], None]) -> None:
    """Run ``prepare``, again while another connection holds a lock SQLite does not wait
    for (changing the journal mode, a lock upgrade), up to the busy timeout."""
    give_up = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            return prepare()
        except sqlite3.OperationalError as exc:
            if _code(exc) not in _BUSY_CODES or time.monotonic() > give_up:
                raise
        time.sleep(random.uniform(0.001, 0.02))


class SQLiteSessionStore(ObjectSessionStore):
    """Sessions in a table of a SQLite database, shareable with agentick's own store.

    ``SQLiteSessionStore("sessions.db")`` or ``sqlite:///abs/sessions.db?table=t``. One
    table is one namespace: a prefix is refused (use another ``table``).

    Raises:
        StoreConfigError: bad database path, table name or option, or a prefix.
    """

    provider = "sqlite"
    capabilities = Capabilities(sync_client=True, client_follows_loop=False)
    url_path = "database file"
    url_params: ClassVar[UrlParams] = {"table": _table_name}

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        table: str = DEFAULT_TABLE,
        prefix: str = "",
        **options: Unpack[StoreOptions],
    ) -> None:
        if prefix:
            raise StoreConfigError(
                f"a SQLite store takes no prefix ({prefix!r}): one table is one namespace,"
                " use table= (?table=) to keep sessions apart"
            )
        super().__init__(**options)
        if not isinstance(database, str | os.PathLike) or not os.fspath(database):
            raise StoreConfigError(f"database must be a file path, not {database!r}")
        self.database = Path(database).expanduser().absolute()
        self.table = _table_name(table)
        self._db = _Database(self.database, self.table)

    @property
    def location(self) -> str:
        """The database as a ``sqlite://`` URL, with its table if not the default."""
        url = f"sqlite://{self.database}"
        return url if self.table == DEFAULT_TABLE else f"{url}?table={self.table}"

    @property
    def place(self) -> str:
        """The database file (its real path) and the table."""
        return f"sqlite://{os.path.realpath(self.database)}?table={self.table}"

    def _classify(self, exc: Exception) -> type[Fault]:
        if _code(exc) in _BUSY_CODES:
            return Transient
        if _code(exc) in _DENIED_CODES:
            return AccessDenied
        if isinstance(exc, PermissionError | FileNotFoundError):
            return AccessDenied
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            return AccessDenied
        return Failed

    def _error_detail(self, exc: Exception) -> str:
        if isinstance(exc, sqlite3.Error | OSError):
            return f"{type(exc).__name__}: {exc}"
        return type(exc).__name__

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await self._blocking(self._db.open)
        stack.callback(self._db.close)

    def _open_sync(self) -> None:
        self._db.open()

    def _close_sync(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ primitives

    def _put_sync(
        self, key: str, body: bytes, metadata: Mapping[str, str], condition: Condition
    ) -> str:
        session_id = decode_key("", key)
        meta = json.dumps(dict(metadata)) if metadata else None
        now = _now_ms()
        with self._db.use(write=True) as db:
            if session_id is None:
                return self._put_other(db, key, body, meta, condition, now)
            if condition != UNCONDITIONAL:
                row = db.execute(
                    f'SELECT ss_version FROM "{self.table}" WHERE session_id = ?', (session_id,)
                ).fetchone()
                condition.require(None if row is None else str(row[0]))
            db.execute(
                f'INSERT INTO "{self.table}" (session_id, snapshot, created_at, updated_at)'
                " VALUES (?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET"
                " snapshot = excluded.snapshot, updated_at = excluded.updated_at",
                (session_id, _stored_body(body), now, now),
            )
            ((version,),) = db.execute(
                f'UPDATE "{self.table}" SET ss_meta = ? WHERE session_id = ? RETURNING ss_version',
                (meta, session_id),
            ).fetchall()
        return str(version)

    def _put_other(
        self,
        db: sqlite3.Connection,
        key: str,
        body: bytes,
        meta: str | None,
        condition: Condition,
        now: int,
    ) -> str:
        other = f'"{self.table}_sessionstore_objects"'
        row = db.execute(f"SELECT version FROM {other} WHERE key = ?", (key,)).fetchone()
        condition.require(None if row is None else str(row[0]))
        ((version,),) = db.execute(
            "UPDATE sessionstore_counters SET value = value + 1 WHERE name = ? RETURNING value",
            (self.table,),
        ).fetchall()
        db.execute(
            f"INSERT OR REPLACE INTO {other} VALUES (?, ?, ?, ?, ?)",
            (key, body, meta, version, now),
        )
        return str(version)

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        condition: Condition,
    ) -> str:
        return await self._blocking(self._put_sync, key, body, metadata, condition)

    def _read_sync(self, key: str, *, with_body: bool) -> StoredObject:
        # The body only when it is within the size limit: SQLite then never hands a huge
        # row (another writer's) to this process. -1: a head, which reads no body.
        limit = self._codec.max_snapshot_bytes if with_body else -1
        session_id = decode_key("", key)
        size = "length(CAST(snapshot AS BLOB))"
        query = (
            f"SELECT CASE WHEN {size} <= ? THEN snapshot END, ss_version, ss_meta,"
            f' updated_at, {size} FROM "{self.table}" WHERE session_id = ?'
        )
        if session_id is None:
            query = (
                "SELECT CASE WHEN length(body) <= ? THEN body END, version, meta,"
                f' updated_at, length(body) FROM "{self.table}_sessionstore_objects"'
                " WHERE key = ?"
            )
        with self._db.use() as db:
            name = key if session_id is None else session_id
            row = db.execute(query, (limit, name)).fetchone()
        if row is None:
            raise NotFound(key)
        stored, version, meta, updated_at, size = row
        if with_body:
            self._check_stored_size(key, size)
        data = stored.encode() if isinstance(stored, str) else bytes(stored or b"")
        metadata = json.loads(meta) if meta else {}
        return StoredObject(data, ObjectInfo(str(version), _time(updated_at), metadata, size))

    async def _get(self, key: str) -> StoredObject:
        return await self._blocking(self._read_sync, key, with_body=True)

    async def _head(self, key: str) -> ObjectInfo:
        return (await self._blocking(self._read_sync, key, with_body=False)).info

    def _delete_sync(self, key: str, condition: Condition) -> None:
        session_id = decode_key("", key)
        table, column = f'"{self.table}"', "session_id"
        version = "ss_version"
        if session_id is None:
            table, column, version = f'"{self.table}_sessionstore_objects"', "key", "version"
        name = key if session_id is None else session_id
        with self._db.use(write=True) as db:
            row = db.execute(f"SELECT {version} FROM {table} WHERE {column} = ?", (name,))
            found = row.fetchone()
            if found is None:
                raise NotFound(key)
            condition.require(str(found[0]))
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    async def _delete(self, key: str, *, condition: Condition) -> None:
        await self._blocking(self._delete_sync, key, condition)

    def _list_sync(self, page_size: int, token: str | None) -> Page:
        # Sessions in session-id order, then the other objects without a "/" in key
        # order; the token says which part and where ("s:<last id>" or "o:<last key>").
        part, after = (token or "s:")[:2], (token or "s:")[2:]
        objects: list[tuple[str, ListedObject]] = []
        with self._db.use() as db:
            if part == "s:":
                rows = db.execute(
                    "SELECT session_id, ss_version, updated_at, length(CAST(snapshot AS BLOB))"
                    f' FROM "{self.table}" WHERE session_id > ? ORDER BY session_id LIMIT ?',
                    (after, page_size + 1),
                ).fetchall()
                objects = [("s:" + row[0], _listed(_session_key(row[0]), row)) for row in rows]
                after = ""
            if len(objects) <= page_size:
                rows = db.execute(
                    "SELECT key, version, updated_at, length(body)"
                    f' FROM "{self.table}_sessionstore_objects"'
                    " WHERE key > ? AND instr(key, '/') = 0 ORDER BY key LIMIT ?",
                    (after, page_size + 1),
                ).fetchall()
                objects += [("o:" + row[0], _listed(row[0], row)) for row in rows]
        page = objects[:page_size]
        more = len(objects) > page_size
        return Page([obj for _, obj in page], page[-1][0] if more else None)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        # The prefix is the store's, always "" (a prefix is refused).
        return await self._blocking(self._list_sync, page_size, token)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _time(ms: int) -> datetime:
    """``updated_at`` (epoch ms, never NULL) as a time."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def _stored_body(body: bytes) -> str | bytes:
    """JSON text as TEXT (agentick reads it); anything else as a BLOB: a compressed
    body is never UTF-8 (gzip's and zstd's magic bytes are not)."""
    try:
        return body.decode()
    except UnicodeDecodeError:
        return body


def _session_key(session_id: str) -> str:
    """The object key of a row ('' for an id no key can hold: listed, never decoded)."""
    try:
        return make_key("", session_id)
    except ValueError:
        return ""


def _listed(key: str, row: Any) -> ListedObject:
    return ListedObject(key, _time(row[2]), str(row[1]), row[3])

"""SQLiteSessionStore's own machinery, each part against the real ``sqlite3``.

What the contract cannot see: the one connection and its settings, the schema added to
agentick's table, opening beside another connection's lock, which SQLite errors are
which fault, the side table of objects that are not sessions (its conditions, reads and
listing), and the transaction around every write.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionstore import (
    SessionStoreError,
    SnapshotTooLargeError,
    SQLiteSessionStore,
    StoreAccessError,
    StoreConfigError,
    SyncSessionStore,
)
from sessionstore.keys import make_key
from sessionstore.provider import (
    ABSENT,
    META_ENCODING,
    UNCONDITIONAL,
    AccessDenied,
    Condition,
    Failed,
    NotFound,
    PreconditionFailed,
    Transient,
)
from sessionstore.stores import sqlite as module
from tests.contract import snapshot
from tests.test_sqlite import AGENTICK_UPSERT
from tests.tracedpeak import Traced, run_traced

JSON = "application/json"
OBJECTS = "agentick_sessions_sessionstore_objects"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the database, as another process would hold it."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    yield connection
    connection.close()


def _put(store: SQLiteSessionStore, key: str, body: bytes, **kw: object) -> str:
    metadata = kw.pop("metadata", {})
    condition = kw.pop("condition", UNCONDITIONAL)
    return store._put_sync(key, body, metadata, condition)


# ------------------------------------------------------------------ the connection


def test_one_connection_serves_every_call_with_its_settings(path: Path) -> None:
    store = SQLiteSessionStore(path)
    with store._db.use() as first:
        pass
    with store._db.use(write=True) as second:
        assert second.in_transaction
    assert first is second
    assert not first.in_transaction  # autocommit outside this store's transactions
    assert first.isolation_level is None
    timeout = first.execute("PRAGMA busy_timeout").fetchone()[0]
    assert timeout == module._BUSY_TIMEOUT * 1000
    store._close_sync()
    assert store._db._connection is None
    store._close_sync()  # closing a closed store does nothing


def test_a_forked_child_opens_a_connection_of_its_own(path: Path) -> None:
    store = SQLiteSessionStore(path)
    with store._db.use() as parent:
        pass
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with store._db.use() as child:
                ok = child is not parent
            _put(store, make_key("", "from-child"), b'{"tick": 1}')
        except BaseException:
            os._exit(2)
        os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0
    with store._db.use() as again:
        assert again is parent  # the parent's own is untouched, and sees the child's row
        assert again.execute('SELECT count(*) FROM "agentick_sessions"').fetchone()[0] == 1


async def test_aclose_closes_the_connection(path: Path) -> None:
    store = SQLiteSessionStore(path)
    await store.save("s", snapshot())
    assert store._db._connection is not None
    await store.aclose()
    assert store._db._connection is None


@pytest.mark.parametrize("database", ["", 3, None])
def test_a_database_must_be_a_path(database: object) -> None:
    with pytest.raises(StoreConfigError, match="database must be a file path"):
        SQLiteSessionStore(database)


# ------------------------------------------------------------------ the schema


def test_the_columns_added_to_agenticks_table_are_as_documented(path: Path) -> None:
    SQLiteSessionStore(path)._open_sync()
    columns = sqlite3.connect(path).execute('PRAGMA table_info("agentick_sessions")')
    assert [(row[1], row[2]) for row in columns] == [
        ("session_id", "TEXT"),
        ("snapshot", "TEXT"),
        ("created_at", "INTEGER"),
        ("updated_at", "INTEGER"),
        ("ss_version", "INTEGER"),
        ("ss_meta", "TEXT"),
    ]


def test_an_opener_completes_a_schema_it_finds_half_made(
    path: Path, raw: sqlite3.Connection
) -> None:
    """What an opener that lost the race to create the schema finds once it may write:
    the columns already there. (Here the side table is missing, so it must run.)"""
    store = SQLiteSessionStore(path)
    version = _put(store, make_key("", "s"), b'{"tick": 1}')
    store._close_sync()
    raw.execute(f'DROP TABLE "{OBJECTS}"')
    again = SQLiteSessionStore(path)
    assert again._read_sync(make_key("", "s"), with_body=True).info.version == version
    _put(again, "notes.txt", b"n")
    assert again._read_sync("notes.txt", with_body=True).body == b"n"


def test_once_the_schema_is_there_opening_takes_no_lock(
    path: Path, raw: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    SQLiteSessionStore(path)._open_sync()
    monkeypatch.setattr(module, "_BUSY_TIMEOUT", 0.2)  # a wrong wait fails fast
    raw.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    raw.execute("INSERT INTO sessionstore_counters VALUES ('x', 0)")
    store = SQLiteSessionStore(path)
    with pytest.raises(NotFound):
        store._read_sync(make_key("", "s"), with_body=True)  # opened, and read
    raw.execute("ROLLBACK")


def test_a_schema_that_cannot_be_made_is_rolled_back_and_said(
    path: Path, raw: sqlite3.Connection
) -> None:
    raw.execute("CREATE VIEW agentick_sessions AS SELECT 1 AS session_id")
    with pytest.raises(SessionStoreError, match="OperationalError: views may not be indexed"):
        SyncSessionStore(SQLiteSessionStore(path)).load("s")
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert tables == {"agentick_sessions"}  # the counter table was rolled back


def test_opening_retries_while_refused_a_lock(path: Path, raw: sqlite3.Connection) -> None:
    """A lock SQLite does not wait for ("database is locked" at once; here a
    connection without a busy timeout) is waited for by retrying."""
    raw.execute("BEGIN EXCLUSIVE")
    database = module._Database(path, "agentick_sessions")
    opener = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    refused = threading.Event()
    attempts: list[str] = []

    def prepare() -> None:
        try:
            database._prepare(opener)
        except sqlite3.OperationalError as exc:
            attempts.append(str(exc))
            refused.set()
            raise
        attempts.append("done")

    errors: list[BaseException] = []

    def run() -> None:
        try:
            module._unless_busy(prepare)
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert refused.wait(30)
    raw.execute("ROLLBACK")
    thread.join(30)
    assert not thread.is_alive() and errors == []
    assert attempts[0] == "database is locked" and attempts[-1] == "done"
    opener.close()


def test_opening_fails_at_once_on_anything_but_a_lock(path: Path, raw: sqlite3.Connection) -> None:
    raw.execute("CREATE VIEW agentick_sessions AS SELECT 1 AS session_id")
    database = module._Database(path, "agentick_sessions")
    attempts = []

    def prepare() -> None:
        attempts.append(1)
        database._prepare(raw)

    with pytest.raises(sqlite3.OperationalError, match="views may not be indexed"):
        module._unless_busy(prepare)
    assert attempts == [1]


# ------------------------------------------------------------------ errors


def _error(run: Callable[[], object]) -> Exception:
    try:
        run()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_sqlite_errors_are_the_faults_they_mean(path: Path, tmp_path: Path) -> None:
    store = SQLiteSessionStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("INSERT INTO t VALUES (1), (2)")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    busy = _error(lambda: other.execute("BEGIN IMMEDIATE"))
    holder.execute("ROLLBACK")
    reading = holder.execute("SELECT x FROM t")
    reading.fetchone()
    locked = _error(lambda: holder.execute("DROP TABLE t"))  # a statement still reads it
    reading.fetchall()
    other.execute("PRAGMA query_only = 1")
    readonly = _error(lambda: other.execute("INSERT INTO t VALUES (3)"))
    (tmp_path / "dir").mkdir()
    cantopen = _error(lambda: sqlite3.connect(tmp_path / "dir").execute("SELECT 1"))
    syntax = _error(lambda: other.execute("SELEC 1"))
    locked_name = _error(lambda: other.execute("SELECT * FROM locked_readonly_busy"))
    too_long = _error(lambda: os.open(tmp_path / ("x" * 300), os.O_RDONLY))
    codes = [_code(e) for e in (busy, locked, readonly, cantopen)]
    assert codes == ["BUSY", "LOCKED", "READONLY", "CANTOPEN"]  # the real conditions
    assert [store._classify(e) for e in (busy, locked)] == [Transient] * 2
    assert [store._classify(e) for e in (readonly, cantopen)] == [AccessDenied] * 2
    assert [store._classify(e) for e in (syntax, locked_name, too_long)] == [Failed] * 3
    assert store._classify(OSError(errno.EROFS, "Read-only file system")) is AccessDenied
    assert store._classify(PermissionError(errno.EACCES, "denied")) is AccessDenied
    assert store._classify(ValueError("x")) is Failed
    holder.close()
    other.close()


def _code(exc: BaseException) -> str:
    return getattr(exc, "sqlite_errorname", "?").removeprefix("SQLITE_")


def test_a_directory_is_no_database(tmp_path: Path) -> None:
    with pytest.raises(StoreAccessError, match="unable to open database file"):
        SyncSessionStore(SQLiteSessionStore(tmp_path)).load("s")


def test_other_errors_name_their_type_and_keep_their_text(
    path: Path, raw: sqlite3.Connection
) -> None:
    store = SyncSessionStore(SQLiteSessionStore(path))
    store.save("s", snapshot())
    raw.execute("UPDATE agentick_sessions SET ss_meta = 'secret{'")
    with pytest.raises(SessionStoreError, match="JSONDecodeError") as caught:
        store.load("s")
    assert "secret" not in str(caught.value)


# ------------------------------------------------------------------ reads and writes


@pytest.mark.parametrize("key", [make_key("", "s"), "notes.txt", "deeper/x.json"])
def test_objects_round_trip_with_metadata_size_and_time(path: Path, key: str) -> None:
    store = SQLiteSessionStore(path)
    metadata = {"ss-tick": "7", "other": "é"}
    before = time.time_ns() // 1_000_000
    version = _put(store, key, b'{"tick": 7}', metadata=metadata)
    after = time.time_ns() // 1_000_000
    got = store._read_sync(key, with_body=True)
    head = store._read_sync(key, with_body=False).info
    assert got.body == b'{"tick": 7}'
    assert got.info == head
    assert (head.version, dict(head.metadata), head.size) == (version, metadata, 11)
    assert head.last_modified is not None
    assert before <= head.last_modified.timestamp() * 1000 <= after + 1
    _put(store, key, b"{}")
    assert store._read_sync(key, with_body=False).info.metadata == {}


async def test_head_and_get_through_the_async_primitives(path: Path) -> None:
    store = SQLiteSessionStore(path)
    metadata = {"ss-tick": "3"}
    version = await store._put(
        "o.txt", b"abc", content_type=JSON, metadata=metadata, condition=ABSENT
    )
    assert (await store._head("o.txt")).version == version
    assert (await store._get("o.txt")).info.metadata == metadata
    assert (await store._get("o.txt")).body == b"abc"
    for call in (store._head, store._get):
        with pytest.raises(NotFound, match="missing.txt"):
            await call("missing.txt")
    with pytest.raises(NotFound, match="missing.txt"):
        await store._delete("missing.txt", condition=UNCONDITIONAL)


def test_updated_at_is_integer_epoch_ms(path: Path, raw: sqlite3.Connection) -> None:
    store = SQLiteSessionStore(path)
    before = time.time_ns() // 1_000_000
    _put(store, make_key("", "s"), b"{}")
    _put(store, "o.txt", b"o")
    after = time.time_ns() // 1_000_000
    for table in ("agentick_sessions", OBJECTS):
        kind, value = raw.execute(f"SELECT typeof(updated_at), updated_at FROM {table}").fetchone()
        assert kind == "integer" and before <= value <= after


def test_a_compressed_snapshot_is_a_blob_and_json_is_text(
    path: Path, raw: sqlite3.Connection
) -> None:
    store = SQLiteSessionStore(path)
    _put(store, make_key("", "plain"), b'{"a": 1}')
    _put(
        store, make_key("", "packed"), gzip.compress(b'{"a": 1}'), metadata={META_ENCODING: "gzip"}
    )
    kinds = dict(raw.execute("SELECT session_id, typeof(snapshot) FROM agentick_sessions"))
    assert kinds == {"plain": "text", "packed": "blob"}


def test_get_refuses_a_body_over_the_limit_before_decoding(path: Path) -> None:
    SyncSessionStore(SQLiteSessionStore(path)).save("s", {"data": "x" * 100})
    small = SQLiteSessionStore(path, max_snapshot_bytes=50)
    with pytest.raises(SnapshotTooLargeError, match="over max_snapshot_bytes=50"):
        small._read_sync(make_key("", "s"), with_body=True)
    assert small._read_sync(make_key("", "s"), with_body=False).info.size is not None


@pytest.mark.parametrize("key", ["notes.txt", make_key("", "s")])
def test_conditions_hold_for_sessions_and_other_objects(path: Path, key: str) -> None:
    store = SQLiteSessionStore(path)
    first = _put(store, key, b"1", condition=ABSENT)
    with pytest.raises(PreconditionFailed):
        _put(store, key, b"2", condition=ABSENT)
    with pytest.raises(PreconditionFailed):
        _put(store, key, b"2", condition=Condition(version=first + "0"))
    second = _put(store, key, b"2", condition=Condition(version=first))
    assert second != first
    assert store._read_sync(key, with_body=True).body == b"2"
    with pytest.raises(PreconditionFailed):
        store._delete_sync(key, Condition(version=first))
    store._delete_sync(key, Condition(version=second))
    with pytest.raises(NotFound):
        store._read_sync(key, with_body=False)
    third = _put(store, key, b"3", condition=ABSENT)
    assert third not in (first, second)


@pytest.mark.parametrize("key", ["notes.txt", make_key("", "s")])
@pytest.mark.parametrize("operation", ["put", "delete"])
def test_a_write_excludes_every_other_writer_from_read_to_write(
    path: Path, raw: sqlite3.Connection, key: str, operation: str
) -> None:
    """Between reading the version and writing, another connection cannot write."""
    store = SQLiteSessionStore(path)
    version = _put(store, key, b"1")
    refused: list[str] = []

    def between(statement: str) -> None:
        if statement.startswith(("INSERT", "DELETE")):
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                refused.append(str(exc))
            else:
                raw.execute("ROLLBACK")

    with store._db.use() as connection:
        connection.set_trace_callback(between)
    if operation == "put":
        _put(store, key, b"2", condition=Condition(version=version))
    else:
        store._delete_sync(key, Condition(version=version))
    assert refused and set(refused) == {"database is locked"}


# ------------------------------------------------------------------ listing


def _pages(store: SQLiteSessionStore, size: int) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = store._list_sync(size, token)
        pages.append([obj.key for obj in page.objects])
        if page.next_token is None:
            return pages
        token = page.next_token


def test_listing_pages_through_sessions_then_other_objects(path: Path) -> None:
    store = SQLiteSessionStore(path)
    sessions = [make_key("", name) for name in ("a", "b", "c")]
    others = ["A-upper.txt", "b.txt", "m/deep.txt", "n/deep.txt", "o/deep.txt", "z.txt"]
    for key in sessions + others:
        _put(store, key, b"{}")
    expected = [*sessions, "A-upper.txt", "b.txt", "z.txt"]
    for size in range(1, 7):
        pages = _pages(store, size)
        assert [key for page in pages for key in page] == expected, size
        assert all(len(page) == size for page in pages[:-1])
        assert len(pages) == -(-len(expected) // size)  # no empty page after a full one


def test_listed_objects_carry_version_size_and_time(path: Path) -> None:
    store = SQLiteSessionStore(path)
    versions = {key: _put(store, key, b'{"x": 1}') for key in (make_key("", "s"), "o.txt")}
    page = store._list_sync(10, None)
    assert {obj.key: (obj.version, obj.size) for obj in page.objects} == {
        key: (version, 8) for key, version in versions.items()
    }
    assert all(obj.last_modified is not None for obj in page.objects)


def test_a_session_id_no_key_can_hold_is_listed_without_a_key(
    path: Path, raw: sqlite3.Connection
) -> None:
    store = SQLiteSessionStore(path)
    store._open_sync()
    raw.execute(
        "INSERT INTO agentick_sessions (session_id, snapshot, created_at, updated_at)"
        " VALUES (?, '{}', 0, 0)",
        ("x" * 2000,),
    )
    assert [obj.key for obj in store._list_sync(10, None).objects] == [""]
    assert SyncSessionStore(store).list() == []
    assert json.loads(raw.execute("SELECT snapshot FROM agentick_sessions").fetchone()[0]) == {}


def oversized_load_traced(payload: bytes) -> list[Any]:
    """In a process of its own (tests.tracedpeak): the peak bytes allocated while
    loading a session whose row is over the store's size limit."""
    store = SyncSessionStore(SQLiteSessionStore(payload.decode(), max_snapshot_bytes=1_000_000))
    with Traced() as traced:
        store.load("big")
    store.close()
    return [traced.peak, traced.raised]


def test_an_oversized_row_is_never_read_into_memory(path: Path) -> None:
    # agentick (or any writer) may store a row over this store's limit: SQLite must
    # not hand it to Python, where it would be a 30 MB str before being refused.
    SQLiteSessionStore(path)._open_sync()  # the schema
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute(AGENTICK_UPSERT, ("big", '{"a":"' + "0" * 30_000_000 + '"}', 1, 1))
    peak, raised = run_traced(
        "tests.test_sqlite_internals:oversized_load_traced", str(path).encode()
    )
    assert raised == "SnapshotTooLargeError"
    assert peak < 5_000_000

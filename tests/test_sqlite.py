"""SQLiteSessionStore passes the contract, and shares a table with agentick's own store.

agentick's TypeScript ``SqliteSessionStore`` (agenticklabs/agentick,
``packages/core/src/app/sqlite-session-store.ts``) runs on ``node:sqlite``, which this
machine's Node lacks; its exact statements are replayed here with Python's ``sqlite3``
against a database this store wrote, and the other way round.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sessionstore import (
    ConflictError,
    SessionStoreError,
    SQLiteSessionStore,
    StoreAccessError,
    StoreConfigError,
    open_store,
)
from tests.contract import AsyncStoreContract, MakeStore, SyncStoreContract, snapshot

REPO = Path(__file__).resolve().parents[1]
T = "agentick_sessions"

#: agentick's statements, verbatim but for the table name's interpolation.
AGENTICK_CREATE = f"""
      CREATE TABLE IF NOT EXISTS {T} (
        session_id TEXT PRIMARY KEY,
        snapshot TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )
    """
AGENTICK_INDEX = f"""
      CREATE INDEX IF NOT EXISTS idx_{T}_updated_at
      ON {T}(updated_at)
    """
AGENTICK_UPSERT = f"""
      INSERT INTO {T} (session_id, snapshot, created_at, updated_at)
      VALUES (?, ?, ?, ?)
      ON CONFLICT(session_id) DO UPDATE SET
        snapshot = excluded.snapshot,
        updated_at = excluded.updated_at
    """
AGENTICK_SELECT = f"""
      SELECT snapshot FROM {T} WHERE session_id = ?
    """
AGENTICK_TOUCH = f"""
      UPDATE {T} SET updated_at = ? WHERE session_id = ?
    """
AGENTICK_DELETE = f"""
      DELETE FROM {T} WHERE session_id = ?
    """
AGENTICK_LIST = f"""
      SELECT session_id FROM {T} ORDER BY updated_at DESC
    """


class Agentick:
    """agentick's store, statement for statement (its ``save``, ``load``, ``delete``)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)  # node:sqlite autocommits
        self.db.execute(AGENTICK_CREATE)
        self.db.execute(AGENTICK_INDEX)

    def save(
        self, session_id: str, snapshot: dict[str, object], now: int = 1_700_000_000_000
    ) -> None:
        self.db.execute(AGENTICK_UPSERT, (session_id, json.dumps(snapshot), now, now))

    def load(self, session_id: str) -> object:
        row = self.db.execute(AGENTICK_SELECT, (session_id,)).fetchone()
        if row is None:
            return None
        self.db.execute(AGENTICK_TOUCH, (1_800_000_000_000, session_id))
        return json.loads(row[0])

    def delete(self, session_id: str) -> None:
        self.db.execute(AGENTICK_DELETE, (session_id,))

    def list(self) -> list[str]:
        return [row[0] for row in self.db.execute(AGENTICK_LIST)]


@pytest.fixture
def store_url(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The URL of the contract's subprocess checks."""
    return f"sqlite://{tmp_path}/sessions.db", {}


class TestSQLiteStore(AsyncStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda **options: SQLiteSessionStore(tmp_path / "sessions.db", **options)


class TestSQLiteSyncStore(SyncStoreContract):
    @pytest.fixture
    def make_async_store(self, tmp_path: Path) -> MakeStore:
        return lambda **options: SQLiteSessionStore(tmp_path / "sessions.db", **options)


async def test_agentick_reads_what_this_store_wrote(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    await store.save("user/1 é", snapshot(tick=3))
    agentick = Agentick(tmp_path / "s.db")
    assert agentick.load("user/1 é") == snapshot(tick=3)  # the raw id, JSON text
    assert agentick.list() == ["user/1 é"]
    agentick.delete("user/1 é")
    assert await store.load("user/1 é") is None


async def test_this_store_reads_what_agentick_wrote_before_and_after(tmp_path: Path) -> None:
    agentick = Agentick(tmp_path / "s.db")
    agentick.save("old", {"tick": 1})  # before this store ever opened the table
    store = SQLiteSessionStore(tmp_path / "s.db")
    assert await store.load("old") == {"tick": 1}
    agentick.save("new", {"tick": 2})
    assert sorted(await store.list()) == ["new", "old"]
    assert await store.load("new") == {"tick": 2}


async def test_a_conditional_save_fails_after_agenticks_upsert(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    version = await store.save("s", snapshot(tick=1))
    Agentick(tmp_path / "s.db").save("s", {"tick": 2})  # agentick's upsert moves the version
    with pytest.raises(ConflictError):
        await store.save("s", snapshot(tick=3), if_version=version)
    with pytest.raises(ConflictError):
        await store.delete("s", if_version=version)
    current = await store.load_versioned("s")
    assert current is not None and current.snapshot == {"tick": 2}
    await store.save("s", snapshot(tick=3), if_version=current.version)


async def test_agenticks_load_moves_no_version_and_its_delete_ends_the_session(
    tmp_path: Path,
) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    version = await store.save("s", snapshot(tick=1))
    agentick = Agentick(tmp_path / "s.db")
    assert agentick.load("s") == snapshot(tick=1)  # touches updated_at only
    await store.save("s", snapshot(tick=2), if_version=version)
    agentick.delete("s")
    with pytest.raises(ConflictError):
        await store.save("s", snapshot(tick=3), if_absent=False, if_version=version)
    await store.save("s", snapshot(tick=3), if_absent=True)


async def test_the_stale_guard_sees_agenticks_tick(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db", reject_stale=True)
    await store.save("s", snapshot(tick=5))  # tick 5 in this store's metadata
    Agentick(tmp_path / "s.db").save("s", {"tick": 9})  # agentick's write clears it
    with pytest.raises(ConflictError, match="stored tick 9"):
        await store.save("s", snapshot(tick=6))


def test_a_new_database_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(SQLiteSessionStore(path).save("s", snapshot()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_urls_name_the_database_and_table(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/s.db?table=team_sessions")
    assert isinstance(store, SQLiteSessionStore)
    assert (store.database, store.table) == (tmp_path / "s.db", "team_sessions")
    with pytest.raises(StoreConfigError, match="no prefix"):
        open_store(f"sqlite://{tmp_path}/s.db?prefix=p/")
    with pytest.raises(StoreConfigError, match="table"):
        open_store(f"sqlite://{tmp_path}/s.db?table=x;drop")
    with pytest.raises(StoreConfigError, match="names host"):
        open_store("sqlite://host/s.db")


async def test_no_database_and_no_directory_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"not a database, " * 100)
    with pytest.raises(SessionStoreError, match="file is not a database") as junk:
        await SQLiteSessionStore(tmp_path / "junk.db").save("s", snapshot())
    assert "junk.db" in str(junk.value)
    with pytest.raises(StoreAccessError, match="No such file or directory"):
        await SQLiteSessionStore(tmp_path / "missing" / "s.db").load("s")
    assert (tmp_path / "junk.db").read_bytes() == b"not a database, " * 100


async def test_two_tables_of_one_database_are_apart(tmp_path: Path) -> None:
    a = SQLiteSessionStore(tmp_path / "s.db")
    b = SQLiteSessionStore(tmp_path / "s.db", table="other")
    await a.save("s", snapshot(tick=1))
    assert await b.load("s") is None
    assert a.place != b.place


async def test_processes_increment_one_counter_without_losing_one(tmp_path: Path) -> None:
    """3 processes x 100 if_version increments of one session."""
    await SQLiteSessionStore(tmp_path / "s.db").save("counter", {"tick": 0})
    url = f"sqlite://{tmp_path}/s.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.file_worker", "increment", url, "100"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    assert [await asyncio.to_thread(p.communicate) for p in procs] == [("", None)] * 3
    assert [p.returncode for p in procs] == [0] * 3
    assert await SQLiteSessionStore(tmp_path / "s.db").load("counter") == {"tick": 300}

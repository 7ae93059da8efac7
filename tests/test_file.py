"""FileSessionStore passes the contract, plus what only files have."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionstore import FileSessionStore, SnapshotDecodeError
from tests.contract import MakeStore, StoreContract, snapshot


class TestFileStore(StoreContract):
    @pytest.fixture
    async def make_store(self, tmp_path: Path) -> AsyncIterator[MakeStore]:
        yield lambda **options: FileSessionStore(tmp_path / "root", prefix="p/", **options)


async def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await asyncio.gather(*(store.save("s", snapshot(tick=i)) for i in range(20)))
    assert sorted(os.listdir(tmp_path)) == [".sessionstore.lock", "s.json"]


async def test_truncated_file_is_a_decode_error(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", snapshot())
    path = tmp_path / "s.json"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(SnapshotDecodeError, match="s.json"):
        await store.load("s")


_CAS_CHILD = """
import asyncio, sys
from sessionstore import FileSessionStore, ConflictError
async def main():
    store = FileSessionStore(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        while True:
            cur = await store.load_versioned("counter")
            try:
                await store.save("counter", dict(cur.snapshot, tick=cur.snapshot["tick"] + 1),
                                 if_version=cur.version)
                break
            except ConflictError:
                pass
asyncio.run(main())
"""


async def test_cas_across_processes(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("counter", snapshot(tick=0))
    procs = [
        subprocess.Popen([sys.executable, "-c", _CAS_CHILD, str(tmp_path), "15"]) for _ in range(4)
    ]
    assert [await asyncio.to_thread(p.wait) for p in procs] == [0, 0, 0, 0]
    final = await store.load("counter")
    assert final is not None and final["tick"] == 60


def test_options_are_validated(tmp_path: Path) -> None:
    from sessionstore import StoreConfigError

    for bad in [
        {"compression": "lz4"},
        {"max_snapshot_bytes": 0},
        {"ttl": 5},
        {"prefix": "a/../b"},
    ]:
        with pytest.raises(StoreConfigError):
            FileSessionStore(tmp_path, **bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FileSessionStore(tmp_path, bogus=1)  # type: ignore[call-arg]


async def test_ids_longer_than_a_file_name_are_invalid(tmp_path: Path) -> None:
    from sessionstore import InvalidSessionIdError

    store = FileSessionStore(tmp_path)
    with pytest.raises(InvalidSessionIdError, match="limit is 255"):
        await store.save("a" * 251, snapshot())
    await store.save("a" * 250, snapshot())

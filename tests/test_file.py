"""FileSessionStore passes the contract, plus what only files have."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

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


def _json_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))


async def test_long_names_are_laid_out_in_segment_directories(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, prefix="p/")
    euro = "%E2%82%AC"  # one character, 9 bytes encoded: segments may cut an escape
    s250, s251 = euro * 27 + "a" * 7, euro * 27 + "a" * 8
    s500, s501, s1017 = euro * 55 + "b" * 5, "c" * 501, "d" * 1017  # a key of 1024 bytes
    expected = {
        s250: f"p/{s250}.json",  # a name of 255 bytes stays a plain file
        s251: f"p/{s251[:250]}+/{s251[250:]}.json",
        s500: f"p/{s500[:250]}+/{s500[250:]}.json",
        s501: f"p/{s501[:250]}+/{s501[250:500]}+/{s501[500:]}.json",
        s1017: "p/"
        + "".join(f"{s1017[i : i + 250]}+/" for i in range(0, 1000, 250))
        + f"{s1017[1000:]}.json",
    }
    ids = {stem: unquote(stem) for stem in expected}
    for session_id in ids.values():
        await store.save(session_id, snapshot(session_id))
    assert _json_files(tmp_path) == sorted(expected.values())
    assert sorted([i async for i in store.iter_ids(page_size=2)]) == sorted(ids.values())
    for session_id in ids.values():
        assert await store.has(session_id)
        assert await store.load(session_id) == snapshot(session_id)
        await store.delete(session_id)
    assert await store.list() == []


async def test_listing_ignores_what_is_not_the_layout(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("x" * 300, snapshot())
    segment = tmp_path / ("x" * 250 + "+")
    (segment / ".json").write_bytes(b"{}")  # an empty rest: not a long name
    (tmp_path / ("y" * 249 + "+")).mkdir()  # too short for a segment
    (tmp_path / ("y" * 249 + "+") / "z.json").write_bytes(b"{}")
    (tmp_path / "dir.json").mkdir()  # a directory is not a session
    (tmp_path / ".sessionstore.tmp").write_bytes(b'{"torn')  # a killed write's leftover
    assert await store.list() == ["x" * 300]

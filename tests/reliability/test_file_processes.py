"""The file store with several processes: as users deploy it on one machine.

Each test starts real processes (``tests/reliability/file_worker.py``): writers killed
with SIGKILL mid-write, counters incremented through different spellings of one
directory, a purge racing a writer that saves the same sessions again.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sessionstore import FileSessionStore
from tests.reliability.file_worker import CRASH_IDS, CRASH_PREFIXES, checksummed, is_whole

REPO = Path(__file__).resolve().parents[2]
CRASH_ROUNDS = 8
SPELLINGS, INCREMENTS = 3, 100
PURGED = 400


def worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.file_worker", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def files_on_disk(root: Path) -> list[Path]:
    return [Path(d, name) for d, _, names in os.walk(root) for name in names]


def wait_for_a_temporary_file(root: Path) -> None:
    give_up = time.monotonic() + 60  # then kill at a random moment after all
    while time.monotonic() < give_up and not any(p.suffix == ".tmp" for p in files_on_disk(root)):
        time.sleep(0.0005)


def age(paths: list[Path], seconds: float) -> None:
    old = time.time() - seconds
    for path in paths:
        os.utime(path, (old, old))


async def test_sigkill_mid_write_never_lists_a_torn_or_temporary_file(tmp_path: Path) -> None:
    """8 writers killed at random moments, half of them while a temporary file exists."""
    root = tmp_path / "root"
    stores = [FileSessionStore(root, prefix=prefix) for prefix in CRASH_PREFIXES]
    leftovers_seen = 0
    for round_ in range(CRASH_ROUNDS):
        child = worker("write", str(root))
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        if round_ % 2:
            await asyncio.sleep(random.uniform(0.0, 0.5))
        else:  # kill while a write is under way: its temporary file exists
            await asyncio.to_thread(wait_for_a_temporary_file, root)
        child.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(child.wait) == -signal.SIGKILL
        child.stdout.close()
        for store in stores:
            listed = await store.list()
            assert set(listed) <= set(CRASH_IDS), listed  # nothing temporary, nothing torn
            for session_id in listed:
                snapshot = await store.load(session_id)
                assert snapshot is not None and is_whole(snapshot), session_id
        names = [p.name for p in files_on_disk(root)]
        assert set(names) <= {".sessionstore.lock", ".sessionstore.tmp"} | {
            n for n in names if n.endswith(".json")
        }
        leftovers_seen += ".sessionstore.tmp" in names
    print(f"\n{CRASH_ROUNDS} SIGKILLs, {leftovers_seen} left a temporary file behind")
    assert leftovers_seen >= 1  # the kills did land mid-write
    rng = random.Random(0)
    for store in stores:  # the next write in each directory takes the leftover over
        for session_id in CRASH_IDS:
            await store.save(session_id, checksummed(0, 512, rng))
    assert [p for p in files_on_disk(root) if p.name == ".sessionstore.tmp"] == []


async def test_one_lock_for_every_spelling_of_a_directory(tmp_path: Path) -> None:
    """3 processes x 100 if_version increments through 3 spellings of one directory."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    await FileSessionStore(tmp_path / "a").save("counter", {"tick": 0})
    urls = [f"file:{tmp_path}?prefix=a", f"file:{tmp_path}/sub/../a", f"file:{tmp_path}/link"]
    procs = [worker("increment", url, str(INCREMENTS)) for url in urls]
    assert [await asyncio.to_thread(p.communicate) for p in procs] == [("", None)] * SPELLINGS
    assert [p.returncode for p in procs] == [0] * SPELLINGS
    assert await FileSessionStore(tmp_path, prefix="a").load("counter") == {
        "tick": SPELLINGS * INCREMENTS
    }


async def test_purge_expired_spares_sessions_saved_while_it_runs(tmp_path: Path) -> None:
    """A purge of 400 expired sessions races a process saving them again."""
    store = FileSessionStore(tmp_path)
    ids = [f"s{i:04d}" for i in range(PURGED)]
    for session_id in ids:
        await store.save(session_id, {"tick": 1})
    age([tmp_path / f"{session_id}.json" for session_id in ids], 7200)
    purger = worker("purge", str(tmp_path), "3600")
    resaver = worker("resave", str(tmp_path), str(PURGED))
    for proc in (purger, resaver):  # start both at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    assert purger.stdout is not None and resaver.stdout is not None
    out = await asyncio.to_thread(purger.stdout.read)
    await asyncio.to_thread(resaver.stdout.read)
    for proc in (purger, resaver):
        await asyncio.to_thread(proc.wait)
        proc.stdout.close()  # type: ignore[union-attr]
    assert (purger.returncode, resaver.returncode) == (0, 0)
    print(f"\npurge deleted {out.strip()} of {PURGED} while they were saved again")
    assert await store.list() == ids
    for session_id in ids:
        assert await store.load(session_id) == {"tick": 2, "resaved": True}, session_id

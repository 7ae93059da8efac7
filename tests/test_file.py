"""FileSessionStore passes the contract, plus what only files have."""

import asyncio
import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import sessionstore
from sessionstore import (
    ConflictError,
    FileSessionStore,
    RetryPolicy,
    SessionStoreError,
    SnapshotDecodeError,
    StoreAccessError,
    StoreUnavailableError,
    SyncSessionStore,
)
from sessionstore.deadline import remaining
from sessionstore.provider import Condition
from sessionstore.runners import _run_here
from tests.contract import AsyncStoreContract, MakeStore, SyncStoreContract, snapshot

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, deadline=30)


@pytest.fixture
def store_url(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The URL of the contract's subprocess checks."""
    return f"file://{tmp_path}/root?prefix=p/", {}


class TestFileStore(AsyncStoreContract):
    @pytest.fixture
    async def make_store(self, tmp_path: Path) -> AsyncIterator[MakeStore]:
        yield lambda **options: FileSessionStore(tmp_path / "root", prefix="p/", **options)


class TestFileSyncStore(SyncStoreContract):
    @pytest.fixture
    def make_async_store(self, tmp_path: Path) -> MakeStore:
        return lambda **options: FileSessionStore(tmp_path / "root", prefix="p/", **options)


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


async def test_a_file_whose_key_is_too_long_is_not_listed(tmp_path: Path) -> None:
    # Five segment directories hold a name no 1024-byte key makes: not a session (its
    # id would be refused by load, delete and so by purge_expired).
    store = FileSessionStore(tmp_path)
    await store.save("s", snapshot())
    deep = tmp_path.joinpath(*(letter * 250 + "+" for letter in "abcde"))
    deep.mkdir(parents=True)
    (deep / "f.json").write_bytes(b"{}")
    assert await store.list() == ["s"]
    assert await store.purge_expired(timedelta(microseconds=1)) == 1
    assert (deep / "f.json").exists()


async def test_the_listing_follows_no_symbolic_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.json").write_bytes(b"{}")
    store = FileSessionStore(tmp_path / "root")
    await store.save("s", snapshot())
    (tmp_path / "root" / ("a" * 250 + "+")).symlink_to(elsewhere, target_is_directory=True)
    assert await store.list() == ["s"]


async def test_a_file_deleted_while_listing_skips_only_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSessionStore(tmp_path)
    for i in range(3):
        await store.save(f"gone{i}", snapshot())
        await store.save(f"kept{i}", snapshot())
    scandir = os.scandir

    def racing(path: str) -> list[os.DirEntry[str]]:
        entries = sorted(scandir(path), key=lambda entry: not entry.name.startswith("gone"))
        for entry in entries[:3]:
            os.unlink(entry.path)  # deleted between the directory read and their stat
        return entries

    monkeypatch.setattr(os, "scandir", racing)
    assert await store.list() == ["kept0", "kept1", "kept2"]


def test_root_must_be_a_path(tmp_path: Path) -> None:
    from sessionstore import StoreConfigError

    for bad in ("", 42, None):
        with pytest.raises(StoreConfigError, match="root must be a directory path"):
            FileSessionStore(bad)  # type: ignore[arg-type]


async def test_a_version_never_repeats_when_the_clock_stands_still(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write sets the modification time strictly above the one it replaces."""
    store = FileSessionStore(tmp_path)
    clock = 1_700_000_000 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: clock)
    versions = [await store.save("s", snapshot()) for _ in range(3)]
    assert (tmp_path / "s.json").stat().st_mtime_ns == clock + 2
    assert len(set(versions)) == 3
    with pytest.raises(ConflictError):
        await store.save("s", snapshot(), if_version=versions[1])
    got = await store.load_versioned("s")
    assert got is not None and got.version == versions[2]


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _modes(top: Path) -> dict[str, int]:
    """The permission bits of ``top`` and everything under it, by relative path."""
    paths = [top, *top.rglob("*")]
    return {str(p.relative_to(top)): stat.S_IMODE(p.lstat().st_mode) for p in paths}


def _expected(top: Path, files: int, directories: int) -> dict[str, int]:
    return {
        str(p.relative_to(top)): directories if p.is_dir() else files
        for p in [top, *top.rglob("*")]
    }


LONG_ID = "x" * 300  # a segment directory


@pytest.mark.parametrize("mask", [0o022, 0o000, 0o077], ids=["umask022", "umask000", "umask077"])
async def test_what_the_store_creates_is_private_whatever_the_umask(
    tmp_path: Path, mask: int
) -> None:
    os.chmod(tmp_path, 0o755)  # an existing directory: the store leaves it as it is
    top = tmp_path / "new"  # the root's parent is the store's too
    with _umask(mask):
        store = FileSessionStore(top / "root", prefix="p/")
        for session_id in ("s", LONG_ID):
            await store.save(session_id, snapshot())
            await store.save(session_id, snapshot(tick=2))  # a replacing save too
    modes = _modes(top)
    assert modes == _expected(top, 0o600, 0o700)
    assert {"root/p/s.json", "root/p/.sessionstore.lock"} <= modes.keys()
    assert f"root/p/{'x' * 250}+/.sessionstore.lock" in modes  # a segment directory's lock
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755


@pytest.mark.parametrize(
    ("file_mode", "directory_mode"), [(0o660, 0o770), (0o640, 0o750), (0o606, 0o707)]
)
@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask022", "umask077"])
async def test_file_mode_is_set_exactly_whatever_the_umask(
    tmp_path: Path, mask: int, file_mode: int, directory_mode: int
) -> None:
    # The operator asked for these bits: under the usual umask 022, 0o660 must not
    # silently become 0o640 (the group could read but not save).
    top = tmp_path / "new"
    with _umask(mask):
        store = FileSessionStore(top / "root", prefix="p/", file_mode=file_mode)
        for session_id in ("s", LONG_ID):
            await store.save(session_id, snapshot())
    assert store.file_mode == file_mode
    assert _modes(top) == _expected(top, file_mode, directory_mode)
    assert len(_modes(top)) == 8  # new, root, p, segment; 2 sessions, 2 locks


def test_a_shared_directory_is_never_seen_narrowed_by_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another group member creating a file in a directory seen at 0o750 (umask 022)
    # would be refused: a directory appears under its name with its final mode.
    sync = SyncSessionStore(FileSessionStore(tmp_path / "root", prefix="p/", file_mode=0o660))
    seen: list[tuple[str, int]] = []
    real_open = os.open

    def watching(path: Any, *args: Any, **kwargs: Any) -> int:
        for directory in [tmp_path, *tmp_path.rglob("*")]:
            if directory.is_dir() and not directory.name.startswith(".sessionstore."):
                seen.append((directory.name, stat.S_IMODE(directory.stat().st_mode)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", watching)
    with _umask(0o022):
        sync.save("s", snapshot())
        sync.save(LONG_ID, snapshot())
    monkeypatch.undo()
    assert {name for name, _ in seen} == {tmp_path.name, "root", "p", "x" * 250 + "+"}
    assert {mode for name, mode in seen if name != tmp_path.name} == {0o770}
    sync.close()


def test_a_directory_another_writer_made_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSessionStore(tmp_path, prefix="p/", file_mode=0o660)
    sync = SyncSessionStore(store)
    sync.save("s", snapshot())
    mkdtemp = tempfile.mkdtemp
    target = tmp_path / "p" / ("x" * 250 + "+")

    def racing(*args: Any, **kwargs: Any) -> str:
        target.mkdir(mode=0o700)  # the other writer's, already holding its lock file
        (target / ".sessionstore.lock").touch()
        return mkdtemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", racing)
    sync.save(LONG_ID, snapshot())
    monkeypatch.undo()
    assert sync.load(LONG_ID) == snapshot()
    assert stat.S_IMODE(target.stat().st_mode) == 0o700  # the other writer's mode
    assert sorted(os.listdir(tmp_path / "p")) == [".sessionstore.lock", "s.json", target.name]
    sync.close()


async def test_a_save_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "p" / "s.json"
    with _umask(0o077):
        private = FileSessionStore(tmp_path, prefix="p/")
        shared = FileSessionStore(tmp_path, prefix="p/", file_mode=0o660)
        for store, chmod, kept in [
            (private, 0o640, 0o640),  # wider than the umask allows new files: kept exactly
            (shared, 0o600, 0o600),  # an operator's chmod 600 is not undone
            (private, 0o755, 0o644),  # never executable
            (shared, 0o444, 0o444),
        ]:
            await store.save("s", snapshot())
            path.chmod(chmod)
            await store.save("s", snapshot(tick=2))
            assert stat.S_IMODE(path.stat().st_mode) == kept, oct(chmod)
            path.chmod(0o600)
            await store.delete("s")
    # A new file takes the store's mode again.
    await shared.save("s", snapshot())
    assert stat.S_IMODE(path.stat().st_mode) == 0o660


async def test_a_leftover_temporary_file_lends_the_new_file_nothing(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("other", snapshot())  # the directory and its lock exist
    leftover = tmp_path / ".sessionstore.tmp"  # a killed writer's, an earlier version's mode
    leftover.write_bytes(b"{}")
    leftover.chmod(0o644)
    await store.save("s", snapshot())
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == 0o600
    assert not leftover.exists()


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (0o777, "nobody execute"),
        (0o700, "nobody execute"),
        (0o4600, "nobody execute"),
        (0o1660, "nobody execute"),
        (0o2660, "nobody execute"),
        (0o400, "the owner must read and write"),
        (0o200, "the owner must read and write"),
        (0o620, "write without read"),
        (0o602, "write without read"),
        (-0o600, "the owner must read and write"),
        (660, "write 0o660 for the octal mode 660"),
        ("660", "must be an int"),
        (True, "must be an int"),
        (0o660 + 0.0, "must be an int"),
    ],
)
def test_file_mode_is_validated(tmp_path: Path, bad: Any, problem: str) -> None:
    from sessionstore import StoreConfigError

    with pytest.raises(StoreConfigError, match=r"^file_mode must be .*0o6GO with G and O") as info:
        FileSessionStore(tmp_path, file_mode=bad)
    assert problem in str(info.value)
    assert "0o600, the default, 0o640 or 0o660" in str(info.value)


def test_the_file_modes_it_takes(tmp_path: Path) -> None:
    taken = [mode for mode in range(0o1000) if _takes(tmp_path, mode)]
    assert taken == [0o600, 0o604, 0o606, 0o640, 0o644, 0o646, 0o660, 0o664, 0o666]
    assert FileSessionStore(tmp_path).file_mode == 0o600


def _takes(root: Path, mode: int) -> bool:
    from sessionstore import StoreConfigError

    try:
        FileSessionStore(root, file_mode=mode)
    except StoreConfigError:
        return False
    return True


# Two users of one group, the store's files in a directory they share. The tests run as
# root: a root process imports everything, then forks one child per step that drops to
# the step's user (os.setgroups/setgid/setuid; no account in /etc needed).
_AS_USERS = """
import json, os, sys, tempfile, traceback
from sessionstore import open_store_sync

url, users, steps = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])

def run(store, op, *args):
    if op == "save":
        store.save(args[0], args[1])
    elif op == "update":
        store.save(args[0], args[1], if_version=store.load_versioned(args[0]).version)
    elif op == "delete":
        store.delete(args[0])
    elif op == "load":
        return store.load(args[0])
    elif op == "list":
        return sorted(store.list())

def warm_up():  # every import a step needs, while this process can still read them
    with tempfile.TemporaryDirectory() as scratch:
        with open_store_sync(f"file:{scratch}?file_mode=660&prefix=p/") as store:
            for op in (["save", "x" * 300, {}], ["update", "x" * 300, {}], ["load", "x" * 300],
                       ["list"], ["delete", "x" * 300]):
                run(store, *op)

warm_up()
results = []
for user, ops in steps:
    uid, gid, groups = users[user]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            os.umask(0o022)
            with open_store_sync(url) as store:
                out = [run(store, *op) for op in ops]
            code = 0
        except BaseException as exc:
            out, code = f"{user}: {type(exc).__name__}: {exc}", 1
        os.write(write, json.dumps(out).encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        results.append(json.loads(pipe.read()))
    os.waitpid(pid, 0)
print(json.dumps(results))
"""

SHARED, UID_A, UID_B = 61000, 61001, 61002  # a group and two users no account has


def as_users(url: str, users: dict[str, list[Any]], steps: list[Any]) -> list[Any]:
    done = subprocess.run(
        [sys.executable, "-c", _AS_USERS, url, json.dumps(users), json.dumps(steps)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return list(json.loads(done.stdout))


@pytest.fixture
def shared_directory() -> Iterator[Path]:
    """A directory of root's that the group SHARED may write, outside root's own."""
    if os.geteuid() != 0:
        pytest.skip("runs the store as two other users (os.setuid), which needs root")
    top = Path(tempfile.mkdtemp(prefix="sessionstore-shared-"))
    try:
        os.chown(top, 0, SHARED)
        top.chmod(0o770)
        yield top
    finally:
        shutil.rmtree(top)


A = {"by": "A"}
B = {"by": "B"}
A2 = {"by": "A", "again": True}


@pytest.mark.parametrize(
    "groups",
    [
        # Both users' primary group is the shared one.
        {"A": [UID_A, SHARED, []], "B": [UID_B, SHARED, []]},
        # Each has a group of their own, the shared one as a supplementary group; the
        # directory's set-group-id bit gives what it holds the shared group.
        {"A": [UID_A, UID_A, [SHARED]], "B": [UID_B, UID_B, [SHARED]]},
    ],
    ids=["primary-group", "supplementary-group-setgid-directory"],
)
def test_two_users_of_one_group_both_save_and_load(
    shared_directory: Path, groups: dict[str, list[Any]]
) -> None:
    setgid = groups["A"][1] != SHARED
    if setgid:
        shared_directory.chmod(0o2770)
    url = f"file:{shared_directory}/sessions?file_mode=660&prefix=team/"
    steps = [
        ("A", [["save", "s1", A], ["save", LONG_ID, A]]),
        ("B", [["load", "s1"], ["update", "s1", B], ["save", "s2", B], ["update", LONG_ID, B]]),
        ("A", [["load", "s1"], ["update", "s1", A2], ["load", "s2"], ["delete", "s2"]]),
        ("A", [["update", LONG_ID, A2], ["list"]]),
        ("B", [["load", "s1"], ["load", LONG_ID], ["delete", "s1"], ["list"]]),
    ]
    assert as_users(url, groups, steps) == [
        [None, None],
        [A, None, None, None],
        [B, None, B, None],
        [None, ["s1", LONG_ID]],
        [A2, A2, None, [LONG_ID]],
    ]
    top = shared_directory / "sessions"
    directory = 0o770 | (stat.S_ISGID if setgid else 0)
    assert _modes(top) == _expected(top, 0o660, directory)
    assert len(_modes(top)) == 6  # sessions, team, segment; a session, 2 locks
    assert {p.stat().st_gid for p in [top, *top.rglob("*")]} == {SHARED}
    owners = {str(p.relative_to(top)): p.stat().st_uid for p in top.rglob("*")}
    assert owners[f"team/{'x' * 250}+/{'x' * 50}.json"] == UID_A  # A saved it last


def test_a_lock_file_another_user_left_0644_still_locks(shared_directory: Path) -> None:
    # An earlier version created the lock 0644 and opened it read-write: the group's
    # second user got StoreAccessError on every save.
    url = f"file:{shared_directory}/sessions?file_mode=660"
    users = {"A": [UID_A, SHARED, []], "B": [UID_B, SHARED, []]}
    assert as_users(url, users, [("A", [["save", "s", A]])]) == [[None]]
    lock = shared_directory / "sessions" / ".sessionstore.lock"
    lock.chmod(0o644)
    steps = [("B", [["update", "s", B], ["save", "t", B], ["delete", "s"], ["list"]])]
    assert as_users(url, users, steps) == [[None, None, None, ["t"]]]
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644


async def test_a_longer_leftover_of_a_killed_write_is_overwritten(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", snapshot())
    (tmp_path / ".sessionstore.tmp").write_bytes(b"x" * 100_000)  # a killed writer's file
    await store.save("s", {"tick": 2})
    assert await store.load("s") == {"tick": 2}


class _Fail:
    """Replaces an ``os`` function: raises ``OSError(code)`` on the first ``times`` calls."""

    def __init__(self, real: Any, code: int, times: int = 1_000) -> None:
        self.real, self.code, self.times, self.calls = real, code, times, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            raise OSError(self.code, os.strerror(self.code))
        return self.real(*args, **kwargs)


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        (errno.ENOSPC, SessionStoreError, "failed (OSError: No space left on device)"),
        (errno.EIO, SessionStoreError, "failed (OSError: Input/output error)"),
        (errno.EROFS, SessionStoreError, "failed (OSError: Read-only file system)"),
        (
            errno.EACCES,
            StoreAccessError,
            "was refused (PermissionError: Permission denied): check the credentials and that",
        ),
        (errno.ENOENT, StoreAccessError, "does not exist"),
    ],
    ids=["ENOSPC", "EIO", "EROFS", "EACCES", "ENOENT"],
)
async def test_a_failed_write_surfaces_and_leaves_nothing_behind(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[Exception],
    message: str,
) -> None:
    store = FileSessionStore(tmp_path, prefix="p/")
    await store.save("s", snapshot(tick=1))
    fsync = _Fail(os.fsync, code)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(error) as info:
        await store.save("s", snapshot(tick=2))
    assert type(info.value) is error
    assert str(info.value).startswith(f"file save {tmp_path.as_uri()}/p/s.json")
    assert message in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert fsync.calls == 1  # not retried
    monkeypatch.undo()
    assert _json_files(tmp_path) == ["p/s.json"]
    assert await store.load("s") == snapshot(tick=1)


@pytest.mark.parametrize("code", [errno.EAGAIN, errno.EBUSY], ids=["EAGAIN", "EBUSY"])
async def test_transient_os_errors_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    store = FileSessionStore(tmp_path, retry=FAST)
    fsync = _Fail(os.fsync, code, times=2)
    monkeypatch.setattr(os, "fsync", fsync)
    await store.save("s", snapshot(tick=2))
    assert fsync.calls == 4  # two failed attempts, then the file and its directory
    monkeypatch.undo()
    assert _json_files(tmp_path) == ["s.json"]
    assert await store.load("s") == snapshot(tick=2)


async def test_the_default_policy_gives_up_after_five_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", snapshot(tick=1))
    fsync = _Fail(os.fsync, errno.EAGAIN)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreUnavailableError, match="failed after 5 attempt"):
        await store.save("s", snapshot(tick=2))
    assert fsync.calls == 5
    monkeypatch.undo()
    assert _json_files(tmp_path) == ["s.json"]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (errno.EIO, SessionStoreError),
        (errno.EACCES, StoreAccessError),
    ],
    ids=["EIO", "EACCES"],
)
async def test_read_delete_and_list_errors_surface(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[Exception],
) -> None:
    store = FileSessionStore(tmp_path, retry=FAST)
    await store.save("s", snapshot())
    where = f"{tmp_path.as_uri()}/s.json"
    for name, op, call in [
        ("fstat", f"file load {where}", store.load("s")),
        ("stat", f"file head {where}", store.has("s")),
        ("unlink", f"file delete {where}", store.delete("s")),
        ("scandir", f"file list {tmp_path.as_uri()}", store.list()),
    ]:
        failing = _Fail(getattr(os, name), code)
        monkeypatch.setattr(os, name, failing)
        with pytest.raises(error) as info:
            await call
        monkeypatch.undo()
        assert type(info.value) is error and str(info.value).startswith(op), info.value
        assert failing.calls == 1
    assert await store.load("s") == snapshot()


async def test_a_missing_directory_lists_empty(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "root", prefix="not/yet/")
    assert await store.list() == []
    assert await store.load("s") is None
    await store.delete("s")


async def test_multi_level_prefixes(tmp_path: Path) -> None:
    deep = FileSessionStore(tmp_path, prefix="a/b/c")
    shallow = FileSessionStore(tmp_path, prefix="a/")
    await deep.save("s/1", snapshot())
    await shallow.save("t", snapshot())
    assert _json_files(tmp_path) == ["a/b/c/s%2F1.json", "a/t.json"]
    assert await deep.list() == ["s/1"] and await shallow.list() == ["t"]
    assert await deep.load("s/1") == snapshot()
    assert await shallow.load("s/1") is None
    await deep.delete("s/1")
    assert await deep.list() == []


async def test_eintr_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileSessionStore(tmp_path, retry=FAST)
    fsync = _Fail(os.fsync, errno.EINTR, times=1)
    monkeypatch.setattr(os, "fsync", fsync)
    await store.save("s", snapshot())
    assert fsync.calls == 3


async def test_secrets_in_os_error_text_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "upload?sig=abc123&se=2030 AccountKey=k3y; client_secret=s3cr3t")

    store = FileSessionStore(tmp_path)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(SessionStoreError) as info:
        await store.save("s", snapshot())
    message = str(info.value)
    assert "sig=***&se=*** AccountKey=***; client_secret=***" in message
    for secret in ("abc123", "2030", "k3y", "s3cr3t"):
        assert secret not in message


async def test_the_root_is_created_with_its_parents(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "a" / "b" / "root")
    await store.save("s", snapshot())
    assert await FileSessionStore(tmp_path / "a" / "b" / "root").load("s") == snapshot()


async def test_one_listing_request_per_page(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    for i in range(6):
        await store.save(f"s{i}", snapshot())
    scans = _Fail(os.scandir, 0, times=0)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "scandir", scans)
        assert len([i async for i in store.iter_ids(page_size=3)]) == 6
    assert scans.calls == 2  # a full last page needs no third read of the directory


class Watched(FileSessionStore):
    """Records the thread of each write and counts the sync client's opens and closes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writers: list[int] = []
        self.opened = self.closed = 0

    def _put_sync(self, key: str, body: bytes, condition: Condition) -> str:
        self.writers.append(threading.get_ident())
        return super()._put_sync(key, body, condition)

    def _open_sync(self) -> None:
        self.opened += 1
        super()._open_sync()

    def _close_sync(self) -> None:
        self.closed += 1


async def test_async_calls_write_in_a_worker_thread(tmp_path: Path) -> None:
    store = Watched(tmp_path)
    await store.save("s", snapshot())
    assert store.writers and threading.get_ident() not in store.writers  # never the loop's


async def test_async_calls_run_in_the_stores_own_worker_pool(tmp_path: Path) -> None:
    # A provider that has a pool of its own (`_worker_pool`, the GCS store's) gets its
    # blocking calls run there, not in the loop's default executor.
    with ThreadPoolExecutor(1) as pool:

        class Pooled(Watched):
            def _worker_pool(self) -> ThreadPoolExecutor:
                return pool

        store = Pooled(tmp_path)
        await store.save("s", snapshot())
        assert store.writers == [pool.submit(threading.get_ident).result()]


def test_blocking_hands_over_arguments_keywords_and_the_callers_context(
    tmp_path: Path,
) -> None:
    # `_blocking` runs a provider's blocking SDK call, which may take keywords (the GCS
    # store's write conditions) and read the caller's deadline (the GCS store's request
    # timeout): in a worker thread for the async API, inline for the sync API, on a
    # thread of its own under a sessionstore.deadline.
    store = FileSessionStore(tmp_path)

    def call(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return args, kwargs, remaining() is not None

    def blocking() -> Coroutine[Any, Any, tuple[Any, ...]]:
        return store._blocking(call, 1, 2, if_generation_match=3)

    assert asyncio.run(blocking()) == ((1, 2), {"if_generation_match": 3}, False)
    assert _run_here(blocking()) == ((1, 2), {"if_generation_match": 3}, False)
    with sessionstore.deadline(3600):
        assert asyncio.run(blocking()) == ((1, 2), {"if_generation_match": 3}, True)
        assert _run_here(blocking()) == ((1, 2), {"if_generation_match": 3}, True)


def test_sync_calls_write_on_the_callers_thread_and_open_once(tmp_path: Path) -> None:
    store = Watched(tmp_path)
    sync = SyncSessionStore(store)
    for i in range(3):
        sync.save("s", snapshot(tick=i))
    assert store.writers == [threading.get_ident()] * 3
    assert (store.opened, store.closed) == (1, 0)
    sync.close()
    assert (store.opened, store.closed) == (1, 1)
    assert sync.load("s") == snapshot(tick=2)  # opens again after close
    assert (store.opened, store.closed) == (2, 1)
    sync.close()


def test_renewing_in_a_forked_child_closes_the_sync_client_and_starts_afresh(
    tmp_path: Path,
) -> None:
    # What the at-fork hook runs in the child (sessionstore.forks), called here in
    # process: the contract's fork tests run it in a child, where no coverage sees it.
    store = Watched(tmp_path)
    sync = SyncSessionStore(store)
    sync.save("s", snapshot(tick=1))
    parents = store._affinity
    store._forked()
    assert (store.opened, store.closed) == (1, 1)  # the child's copy, closed
    assert store._affinity is not parents and not store._sync_open
    sync.save("s", snapshot(tick=2))  # opens a sync client of its own
    assert (store.opened, store.closed) == (2, 1)
    assert asyncio.run(store.load("s")) == snapshot(tick=2)  # (its open checks the root)
    assert (store.opened, store.closed) == (3, 1)
    store._forked()  # the sync client again
    assert (store.opened, store.closed) == (3, 2)
    store._forked()  # no sync client open: nothing to close
    assert (store.opened, store.closed) == (3, 2)
    assert sync.load("s") == snapshot(tick=2)
    sync.close()
    assert (store.opened, store.closed) == (4, 3)


async def test_a_privileged_save_keeps_the_owner_and_group_it_replaces(tmp_path: Path) -> None:
    # root (a maintenance job, `sessionstore put`) saving over a user's private session
    # must not take it away from that user.
    if os.geteuid() != 0:
        pytest.skip("gives files to another user (os.chown), which needs root")
    store = FileSessionStore(tmp_path)
    await store.save("s", snapshot())
    path = tmp_path / "s.json"
    os.chown(path, UID_A, SHARED)
    await store.save("s", snapshot(tick=2))
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (UID_A, SHARED, 0o600)


_OWNER_RULE = "the owner must read and write, and nobody execute"
_WRITE_RULE = "write without read is no use"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (0o700, _OWNER_RULE),
        (0o400, _OWNER_RULE),
        (0o620, _WRITE_RULE),
        (0o602, _WRITE_RULE),
        (660, f"{_OWNER_RULE}; write 0o660 for the octal mode 660"),
    ],
)
def test_a_bad_file_mode_says_exactly_what_is_wrong(tmp_path: Path, bad: int, problem: str) -> None:
    from sessionstore import StoreConfigError

    with pytest.raises(StoreConfigError) as info:
        FileSessionStore(tmp_path, file_mode=bad)
    assert str(info.value).endswith(f", not {oct(bad)} ({problem})")


class _Chown:
    """Replaces ``os.fchown`` for a writer of ``uid`` in ``groups`` (uid 0: privileged).

    Records each call; refuses (EPERM) what the kernel refuses such a writer: giving the
    file to another owner, or a group the writer is not in. The file's owner and group
    after the accepted calls are ``owner``.
    """

    def __init__(self, uid: int, gid: int, groups: tuple[int, ...] = ()) -> None:
        self.uid, self.groups = uid, {gid, *groups}
        self.owner = (uid, gid)
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
        _fd, uid, gid = args
        if self.uid != 0 and (uid not in (-1, self.uid) or gid not in (-1, *self.groups)):
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        self.owner = (self.owner[0] if uid == -1 else uid, self.owner[1] if gid == -1 else gid)


_ME, _MY_GROUP, _OTHER, _OTHER_GROUP, _SHARED = 1001, 1001, 1002, 1002, 1100


@pytest.mark.parametrize(
    ("writer", "replaced", "calls", "owner"),
    [
        # The writer's own file: nothing to change, no call.
        ((_ME, _MY_GROUP), (_ME, _MY_GROUP), [], (_ME, _MY_GROUP)),
        ((0, 0), (0, 0), [], (0, 0)),
        # A privileged writer gives back what differs.
        ((0, 0), (_OTHER, 0), [(_OTHER, -1)], (_OTHER, 0)),
        ((0, 0), (0, _OTHER_GROUP), [(-1, _OTHER_GROUP)], (0, _OTHER_GROUP)),
        ((0, 0), (_OTHER, _OTHER_GROUP), [(_OTHER, _OTHER_GROUP)], (_OTHER, _OTHER_GROUP)),
        ((0, 0), (_OTHER, _OTHER), [(_OTHER, _OTHER)], (_OTHER, _OTHER)),
        ((0, 0), (1, 1), [(1, 1)], (1, 1)),
        # Another user's file: the owner cannot be given back, a shared group can.
        (
            (_ME, _MY_GROUP, _SHARED),
            (_OTHER, _SHARED),
            [(_OTHER, _SHARED), (-1, _SHARED)],
            (_ME, _SHARED),
        ),
        ((_ME, _MY_GROUP, _SHARED), (_OTHER, _MY_GROUP), [(_OTHER, -1)], (_ME, _MY_GROUP)),
        ((_ME, _MY_GROUP, _SHARED), (_ME, _SHARED), [(-1, _SHARED)], (_ME, _SHARED)),
        # Refused both ways: the file stays the writer's, and that is no error.
        (
            (_ME, _MY_GROUP),
            (_OTHER, _OTHER_GROUP),
            [(_OTHER, _OTHER_GROUP), (-1, _OTHER_GROUP)],
            (_ME, _MY_GROUP),
        ),
        ((_ME, _MY_GROUP), (_ME, _OTHER_GROUP), [(-1, _OTHER_GROUP)], (_ME, _MY_GROUP)),
    ],
)
def test_a_save_keeps_the_owner_and_group_it_may(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: tuple[int, ...],
    replaced: tuple[int, int],
    calls: list[tuple[int, int]],
    owner: tuple[int, int],
) -> None:
    # _keep_owner directly: which owner and group the new file asks for, and what it
    # falls back to when refused, for writers this process cannot become.
    from sessionstore.stores.file import _keep_owner

    chown = _Chown(writer[0], writer[1], tuple(writer[2:]))
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:
        st = list(real_fstat(fd))
        st[stat.ST_UID], st[stat.ST_GID] = chown.owner
        return os.stat_result(st)

    old = os.stat_result((0o100600, 1, 1, 1, *replaced, 0, 0, 0, 0))
    path = tmp_path / "new"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        monkeypatch.setattr(os, "fstat", fstat)
        monkeypatch.setattr(os, "fchown", chown)
        _keep_owner(fd, old)
        monkeypatch.undo()
    finally:
        os.close(fd)
    assert chown.calls == [(fd, *call) for call in calls]
    assert chown.owner == owner


def test_a_shared_directory_takes_the_set_group_id_bit_of_its_parent(tmp_path: Path) -> None:
    # The staging directory is made in the parent, so it inherits what a set-group-id
    # parent passes on (its group and the bit), as a plain mkdir there would.
    tmp_path.chmod(0o2770)
    with SyncSessionStore(FileSessionStore(tmp_path / "root", file_mode=0o660)) as sync:
        sync.save("s", snapshot())
    st = (tmp_path / "root").stat()
    assert stat.S_IMODE(st.st_mode) == 0o2770
    assert st.st_gid == tmp_path.stat().st_gid


@pytest.mark.parametrize("swapped", ["symlink", "file"])
def test_a_staging_directory_swapped_meanwhile_is_not_chmodded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    # Another user of a shared parent replaces the staging directory before it is opened:
    # the store must not change the mode of what now stands there.
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700) if swapped == "symlink" else victim.write_bytes(b"")
    victim.chmod(0o700 if swapped == "symlink" else 0o600)
    mkdtemp = tempfile.mkdtemp

    def swapping(*args: Any, **kwargs: Any) -> str:
        staging = mkdtemp(*args, **kwargs)
        os.rmdir(staging)
        if swapped == "symlink":
            os.symlink(victim, staging)
        else:
            os.link(victim, staging)
        return staging

    monkeypatch.setattr(tempfile, "mkdtemp", swapping)
    sync = SyncSessionStore(FileSessionStore(tmp_path / "root", file_mode=0o660))
    with pytest.raises(SessionStoreError):
        sync.save("s", snapshot())
    monkeypatch.undo()
    assert stat.S_IMODE(victim.stat().st_mode) == (0o700 if swapped == "symlink" else 0o600)
    assert not (tmp_path / "root").exists()
    sync.close()


def test_a_directory_error_surfaces_even_if_another_writer_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the name being taken means "another writer's directory": an I/O error while
    # making it surfaces, whatever appeared meanwhile.
    mkdtemp = tempfile.mkdtemp

    def racing(*args: Any, **kwargs: Any) -> str:
        (tmp_path / "root").mkdir()
        return mkdtemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", racing)
    monkeypatch.setattr(os, "fchmod", _Fail(os.fchmod, errno.EIO, times=1))
    sync = SyncSessionStore(FileSessionStore(tmp_path / "root", file_mode=0o660))
    with pytest.raises(SessionStoreError, match="Input/output error"):
        sync.save("s", snapshot())
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["root"]  # no staging directory left
    sync.close()


class _Interrupted(BaseException):
    pass


def test_an_interrupted_directory_leaves_no_staging_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise _Interrupted

    monkeypatch.setattr(os, "rename", interrupted)
    sync = SyncSessionStore(FileSessionStore(tmp_path / "root", file_mode=0o660))
    with pytest.raises(_Interrupted):
        sync.save("s", snapshot())
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []
    sync.close()


def test_a_directory_another_writer_made_meanwhile_is_used_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mkdir = os.mkdir

    def racing(path: Any, *args: Any, **kwargs: Any) -> None:
        mkdir(path, 0o700)  # the other writer's
        mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", racing)
    with SyncSessionStore(FileSessionStore(tmp_path / "root", prefix="p/")) as sync:
        sync.save("s", snapshot())
        monkeypatch.undo()
        assert sync.load("s") == snapshot()


def test_a_symlink_planted_as_the_temporary_file_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another user of a shared directory plants a link where the temporary file is
    # made: the save fails rather than writing the session where the link points.
    store = FileSessionStore(tmp_path / "root")
    sync = SyncSessionStore(store)
    sync.save("s", snapshot())
    victim = tmp_path / "victim"
    unlink = os.unlink

    def planting(path: Any, *args: Any, **kwargs: Any) -> None:
        try:
            unlink(path, *args, **kwargs)
        finally:  # after the unlink, before the file is made
            if os.path.basename(path) == ".sessionstore.tmp":
                os.symlink(victim, path)

    monkeypatch.setattr(os, "unlink", planting)
    with pytest.raises(SessionStoreError, match="FileExistsError"):
        sync.save("s", snapshot(tick=2))
    monkeypatch.undo()
    assert not victim.exists()
    assert sync.load("s") == snapshot()
    sync.close()


def test_a_failed_chmod_of_a_new_file_surfaces_as_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSessionStore(tmp_path, file_mode=0o660)
    sync = SyncSessionStore(store)
    sync.save("s", snapshot())
    monkeypatch.setattr(os, "fchmod", _Fail(os.fchmod, errno.EIO, times=1))
    with pytest.raises(SessionStoreError, match=r"failed \(OSError: Input/output error\)") as info:
        sync.save("s", snapshot(tick=2))
    monkeypatch.undo()
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.EIO
    assert sync.load("s") == snapshot()
    sync.close()


def test_a_lock_file_the_writer_may_not_write_is_opened_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As another user's 0644 lock file is (root, running these tests, may write any).
    store = FileSessionStore(tmp_path)
    sync = SyncSessionStore(store)
    sync.save("s", snapshot())
    lock = str(tmp_path / ".sessionstore.lock")
    real_open = os.open
    opened: list[int] = []

    def refusing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == lock:
            opened.append(flags)
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    sync.save("s", snapshot(tick=2))
    sync.delete("s")
    monkeypatch.undo()
    assert opened == [os.O_RDWR | os.O_NOFOLLOW, os.O_RDONLY | os.O_NOFOLLOW] * 2
    assert sync.list() == []
    sync.close()


class _Spinning(BaseException):
    pass


@pytest.mark.parametrize("target", ["nowhere", "elsewhere"])
async def test_a_link_in_place_of_the_lock_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    # A dangling link made every save and delete there spin forever (open: no such
    # file; create: it exists); a link to another file locked that file.
    store = FileSessionStore(tmp_path / "root", retry=FAST)
    await store.save("s", snapshot())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"")
    lock = tmp_path / "root" / ".sessionstore.lock"
    lock.unlink()
    lock.symlink_to(tmp_path / target)
    real_open, opens = os.open, [0]

    def bounded(path: Any, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(lock):
            opens[0] += 1
            if opens[0] > 20:  # would go round forever: end it, so the test fails
                raise _Spinning
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", bounded)
    for call in (store.save("s", snapshot(tick=2)), store.delete("s")):
        with pytest.raises(SessionStoreError, match="Too many levels of symbolic links"):
            await call
    monkeypatch.undo()
    assert await store.load("s") == snapshot()
    assert lock.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_lock_file_another_writer_made_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not there when opened, there when created (O_EXCL): open it again.
    lock = str(tmp_path / ".sessionstore.lock")
    real_open, raced = os.open, []

    def racing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == lock and flags & os.O_CREAT and not raced:
            raced.append(flags)
            os.close(real_open(lock, os.O_WRONLY | os.O_CREAT, 0o600))  # the other writer
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", racing)
    with SyncSessionStore(FileSessionStore(tmp_path)) as sync:
        sync.save("s", snapshot())
        monkeypatch.undo()
        assert raced and sync.load("s") == snapshot()

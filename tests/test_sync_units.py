"""SyncSessionStore piece by piece, on the memory and file stores (no emulator).

The whole contract through the sync API is in tests/contract.py (SyncStoreContract);
these are the details it does not pin: which loop and thread a call runs on, what an
interrupt leaves behind, how the loop thread ends. scripts/mutate runs them
(pyproject.toml, [tool.mutmut]).
"""

import asyncio
import contextvars
import errno
import gc
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import sessionstore
from sessionstore import (
    FileSessionStore,
    MemorySessionStore,
    StoreUnavailableError,
    SyncSessionStore,
    open_store_sync,
)
from sessionstore.runners import OnLoopThread, _live, _LoopThread
from tests.contract import run_python, snapshot

#: How long a blocked close waits for the test to release it. Only a regression ever
#: waits this long (the test releases it at once); it keeps such a run from hanging.
_SAFETY_TIMEOUT = 15.0

_caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="unset")


class Watched(FileSessionStore):
    """A file store that records the loop, thread and caller context of each write."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.threads: list[threading.Thread] = []
        self.callers: list[str] = []

    async def _put(self, *args: Any, **kwargs: Any) -> Any:
        self.loops.append(asyncio.get_running_loop())
        self.threads.append(threading.current_thread())
        self.callers.append(_caller.get())
        return await super()._put(*args, **kwargs)


def test_open_store_sync_opens_the_url_with_its_options(tmp_path: Path) -> None:
    sync = open_store_sync(f"file:{tmp_path}", prefix="p/")
    assert isinstance(sync, SyncSessionStore) and sync.on_callers_thread
    assert sync.prefix == "p/"
    sync.save("s", snapshot(tick=1))
    same = SyncSessionStore(FileSessionStore(tmp_path, prefix="p/"))
    assert same.load("s") == snapshot(tick=1)
    assert SyncSessionStore(FileSessionStore(tmp_path)).list() == []  # under p/ only
    sync.close()
    same.close()


def test_the_calls_of_one_thread_share_its_loop(tmp_path: Path) -> None:
    store = Watched(tmp_path)
    sync = SyncSessionStore(store)
    sync.save("a", snapshot(tick=1))
    sync.save("b", snapshot(tick=1))
    other = threading.Thread(target=sync.save, args=("c", snapshot(tick=1)))
    other.start()
    other.join()
    first, second, third = store.loops
    assert first is second  # kept for the thread's next call...
    assert third is not first  # ...and private to it
    assert store.threads == [threading.current_thread()] * 2 + [other]
    sync.close()


async def test_a_call_from_async_code_runs_in_a_helper_thread_with_the_callers_context(
    tmp_path: Path,
) -> None:
    store = Watched(tmp_path)
    sync = SyncSessionStore(store)
    token = _caller.set("the handler")
    try:
        sync.save("s", snapshot(tick=1))
        with sessionstore.deadline(0), pytest.raises(StoreUnavailableError, match="deadline"):
            sync.save("s", snapshot(tick=2))
    finally:
        _caller.reset(token)
    assert store.callers == ["the handler"]
    (thread,) = store.threads
    assert thread is not threading.current_thread()
    assert thread.name.startswith("sessionstore-sync")
    assert sync.load("s") == snapshot(tick=1)
    sync.close()


class _Interrupting(FileSessionStore):
    """A file store whose writes are interrupted like Ctrl-C interrupts them.

    ``outside``: the KeyboardInterrupt comes from a callback of the loop (a signal
    handler) while the write waits; else the write itself raises it.
    """

    def __init__(self, root: Path, *, outside: bool) -> None:
        super().__init__(root)
        self.outside = outside
        self.ended = False

    async def _put(self, *args: Any, **kwargs: Any) -> Any:
        if not self.outside:
            raise KeyboardInterrupt
        asyncio.get_running_loop().call_soon(_interrupt)
        try:
            await asyncio.sleep(3600)
            return await super()._put(*args, **kwargs)
        finally:
            self.ended = True


def _interrupt() -> None:
    raise KeyboardInterrupt


def test_an_interrupted_call_is_ended_before_the_interrupt_reaches_the_caller(
    tmp_path: Path,
) -> None:
    store = _Interrupting(tmp_path, outside=True)
    sync = SyncSessionStore(store)
    with pytest.raises(KeyboardInterrupt):
        sync.save("s", snapshot(tick=1))
    assert store.ended  # cancelled there, not left to resume in the next call
    store.outside = False
    assert not sync.has("s")
    sync.close()


def test_an_interrupt_raised_inside_the_call_is_not_reported_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # In a thread that then ends: its loop is closed without running again, so only
    # the call itself can mark the task's exception as seen (else asyncio logs "Task
    # exception was never retrieved" when the task is collected).
    sync = SyncSessionStore(_Interrupting(tmp_path, outside=False))
    interrupted: list[BaseException] = []

    def call() -> None:
        try:
            sync.save("s", snapshot(tick=1))
        except KeyboardInterrupt as exc:
            interrupted.append(exc)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        thread = threading.Thread(target=call)
        thread.start()
        thread.join()
        assert len(interrupted) == 1
        interrupted.clear()  # its traceback holds the task
        gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    sync.close()


class Closing(MemorySessionStore):
    """A memory store (served by a loop thread) that records where it is closed.

    With ``gate``, closing waits until the test sets it (or the safety timeout).
    """

    def __init__(self, *, gate: bool = False) -> None:
        super().__init__()
        self.closed_on: list[threading.Thread] = []
        self.release = threading.Event()
        if not gate:
            self.release.set()

    async def aclose(self) -> None:
        self.release.wait(_SAFETY_TIMEOUT)  # blocks the loop thread, like a stuck close
        self.closed_on.append(threading.current_thread())
        await super().aclose()


def on_loop_thread(sync: SyncSessionStore) -> OnLoopThread:
    """The runner of a sync store served by a loop thread."""
    assert isinstance(sync._runner, OnLoopThread)
    return sync._runner


def gated() -> tuple[Closing, SyncSessionStore, _LoopThread]:
    """A sync store served by its loop thread, whose close waits until the test lets it."""
    store = Closing(gate=True)
    sync = SyncSessionStore(store)
    sync.save("s", snapshot(tick=1))  # starts the loop thread
    runner = on_loop_thread(sync).loop_thread
    assert runner is not None
    return store, sync, runner


def test_the_loop_thread_is_a_named_daemon_and_close_ends_it() -> None:
    store = Closing()
    sync = SyncSessionStore(store)
    assert not sync.on_callers_thread
    sync.save("s", snapshot(tick=1))
    runner = on_loop_thread(sync).loop_thread
    assert runner is not None
    assert runner.thread.name == "sessionstore-sync"
    assert runner.thread.daemon  # never keeps the process alive at exit
    assert runner in _live  # stopped at exit if never closed
    sync.close()
    assert store.closed_on == [runner.thread]  # closed on the loop it lives on...
    assert not runner.thread.is_alive()  # ...before close() returns
    assert runner not in _live and on_loop_thread(sync).loop_thread is None
    assert sync.load("s") == snapshot(tick=1)  # usable again: a new loop thread
    assert on_loop_thread(sync).loop_thread not in (None, runner)
    sync.close()


def test_close_returns_only_after_a_slow_close_has_ended() -> None:
    store, sync, runner = gated()
    slow = threading.Timer(0.2, store.release.set)  # the store's close takes 0.2 s
    slow.start()
    sync.close()
    assert store.closed_on == [runner.thread] and not runner.thread.is_alive()
    slow.join()


def test_stop_waits_no_longer_than_its_timeout() -> None:
    store, sync, runner = gated()
    try:
        runner.stop(timeout=0)  # as at exit: a stuck close must not hold it
        assert runner.thread.is_alive() and store.closed_on == []
    finally:
        store.release.set()
        runner.thread.join()
    assert store.closed_on == [runner.thread]
    sync.close()  # the loop has ended: nothing left to do


def test_a_dropped_store_does_not_wait_for_its_close() -> None:
    store, sync, runner = gated()
    try:
        del sync
        gc.collect()  # the finalizer tells the loop thread to end, and does not wait
        assert runner.thread.is_alive() and store.closed_on == []
    finally:
        store.release.set()
        runner.thread.join()
    assert store.closed_on == [runner.thread]
    assert runner not in _live


UNCLOSED_AT_EXIT = """
import asyncio
from sessionstore import MemorySessionStore, SyncSessionStore

class SlowClose(MemorySessionStore):
    async def aclose(self):
        await asyncio.sleep(0.5)  # a client that takes a while to close
        print("closed", flush=True)

store = SyncSessionStore(SlowClose())  # never closed, alive until exit
store.save("s", {"tick": 1})
"""


def test_exit_waits_for_an_unclosed_store_to_close_its_client() -> None:
    # Exit stops every loop thread and waits for its close (_stop_at_exit); the
    # wrapper's finalizer, which does not wait, is not what exit runs.
    stdout, stderr = run_python(UNCLOSED_AT_EXIT)
    assert (stdout, stderr) == ("closed\n", "")


def test_a_forked_child_forgets_the_parents_loop_thread() -> None:
    # What the fork hook does in a child, called here (mutmut sees no forked child).
    store = Closing()
    sync = SyncSessionStore(store)
    sync.save("s", snapshot(tick=1))
    parents, finalizer = on_loop_thread(sync).loop_thread, on_loop_thread(sync)._finalizer
    assert parents is not None and finalizer is not None
    sync._forked()
    parents.stop()  # in a real child that thread is gone; here it still runs
    assert on_loop_thread(sync).loop_thread is None and not finalizer.alive
    assert sync.load("s") == snapshot(tick=1)  # served by a loop thread of its own
    assert on_loop_thread(sync).loop_thread not in (None, parents)
    sync.close()
    unused = SyncSessionStore(Closing())
    unused.save("s", snapshot(tick=1))
    unused._forked()
    unused.close()  # nothing of its own to stop yet


class Listing(FileSessionStore):
    """A file store that counts listing pages and listings that have ended."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pages = 0
        self.ended = 0

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Any:
        self.pages += 1
        return await super()._list_page(prefix, page_size=page_size, token=token)

    async def iter_ids(self, *, page_size: int = 1000) -> AsyncIterator[str]:
        try:
            async for session_id in super().iter_ids(page_size=page_size):
                yield session_id
        finally:
            self.ended += 1


def listed(tmp_path: Path, sessions: int) -> tuple[Listing, SyncSessionStore]:
    """A Listing store with ``sessions`` sessions, and its sync wrapper."""
    store = Listing(tmp_path)
    sync = SyncSessionStore(store)
    for i in range(sessions):
        sync.save(f"s{i}", snapshot(tick=i))
    return store, sync


def test_a_sync_iterator_lists_one_page_per_round_trip(tmp_path: Path) -> None:
    store, sync = listed(tmp_path, 5)
    ids = sync.iter_ids(page_size=2)
    assert next(ids) == "s0"
    assert store.pages == 1  # one page fetched for the first id, not more
    assert list(ids) == ["s1", "s2", "s3", "s4"]
    assert store.ended == 1
    sync.close()


def test_a_listing_read_to_its_end_takes_no_round_trip_to_close(tmp_path: Path) -> None:
    store, sync = listed(tmp_path, 5)
    runs: list[object] = []
    run = sync._run

    def counted(coro: Any) -> Any:
        runs.append(coro)
        return run(coro)

    sync._run = counted  # type: ignore[method-assign]
    assert list(sync.iter_ids(page_size=2)) == ["s0", "s1", "s2", "s3", "s4"]
    assert len(runs) == 4  # pages of 2, 2, 1, then the end; nothing left to close
    assert store.ended == 1
    sync.close()


def test_an_abandoned_sync_iterator_ends_its_listing_at_once(tmp_path: Path) -> None:
    store, sync = listed(tmp_path, 3)
    ids = sync.iter_ids(page_size=1)
    assert next(ids) == "s0"
    ids.close()
    assert store.ended == 1  # closed by close(), not left to the garbage collector
    sync.close()


def test_sync_iterators_default_to_full_pages(tmp_path: Path) -> None:
    _, sync = listed(tmp_path, 3)
    assert list(sync.iter_ids()) == ["s0", "s1", "s2"]
    assert [info.session_id for info in sync.iter_info()] == ["s0", "s1", "s2"]
    sync.close()


NO_FILE_DESCRIPTOR_LEFT = """
import os, resource
from sessionstore import MemorySessionStore, StoreUnavailableError, SyncSessionStore

store = SyncSessionStore(MemorySessionStore())
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    store.save("s", {"tick": 1})
except StoreUnavailableError as exc:
    print(str(exc).split(": ", 1)[1])
"""


def test_a_loop_thread_that_cannot_start_raises_instead_of_hanging() -> None:
    # No file descriptor left for the loop's selector: the call raises at once.
    done = subprocess.run(
        [sys.executable, "-c", NO_FILE_DESCRIPTOR_LEFT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.startswith("cannot start the sync API's event loop (OSError: [Errno 24]")


def test_a_loop_that_cannot_start_names_its_failure_and_chains_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same failure in this process (the test above runs another interpreter, which
    # scripts/mutate's mutants never reach): asyncio cannot make the loop thread's loop.
    def no_file_descriptor_left() -> asyncio.AbstractEventLoop:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(asyncio.events, "new_event_loop", no_file_descriptor_left)
    sync = SyncSessionStore(MemorySessionStore())
    with pytest.raises(StoreUnavailableError) as info:
        sync.save("s", snapshot(tick=1))
    assert str(info.value).endswith(
        ": cannot start the sync API's event loop (OSError: [Errno 24] Too many open files)"
    )
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.EMFILE

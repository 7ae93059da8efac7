"""sessionstore.deadline(): the block, its nesting and its tenacity stop condition.

The end-to-end cases (retries and stalled requests on every cloud, both APIs) are in
tests/reliability/test_deadline.py.
"""

import asyncio
import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, wait_fixed

import sessionstore
from sessionstore import (
    FileSessionStore,
    MemorySessionStore,
    RetryPolicy,
    StoreConfigError,
    StoreUnavailableError,
    SyncSessionStore,
)
from sessionstore.deadline import remaining, stop_at_deadline
from sessionstore.lifecycle import _on_daemon_thread
from sessionstore.provider import Fault, StoredObject, Transient


def test_remaining_outside_and_inside_nested_blocks() -> None:
    assert remaining() is None
    with sessionstore.deadline(100):
        outer = remaining()
        assert outer is not None and 0 < outer <= 100
        with sessionstore.deadline(1000):  # a later end does not extend the budget
            inner = remaining()
            assert inner is not None and inner <= outer
        with sessionstore.deadline(10):
            inner = remaining()
            assert inner is not None and inner <= 10
    assert remaining() is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, "5", None, True])
def test_bad_budgets_are_config_errors(bad: object) -> None:
    with pytest.raises(StoreConfigError, match="deadline"), sessionstore.deadline(bad):  # type: ignore[arg-type]
        pass


async def test_a_spent_budget_sends_nothing_and_writes_nothing() -> None:
    store = MemorySessionStore()
    await store.save("s", {"tick": 1})
    with sessionstore.deadline(0):
        with pytest.raises(StoreUnavailableError, match="deadline"):
            await store.save("s", {"tick": 2})
        with pytest.raises(StoreUnavailableError, match="deadline"):
            await store.load("s")
    assert await store.load("s") == {"tick": 1}


async def test_the_stop_condition_skips_a_wait_past_the_deadline() -> None:
    attempts = 0

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("transient")

    retrying = AsyncRetrying(
        stop=stop_at_deadline(),
        wait=wait_fixed(60),
        retry=retry_if_exception_type(ConnectionError),
        reraise=True,
    )
    with sessionstore.deadline(5), pytest.raises(ConnectionError):
        await asyncio.wait_for(retrying(failing), timeout=30)
    assert attempts == 1


async def test_tasks_started_inside_a_block_inherit_it() -> None:
    with sessionstore.deadline(50):
        seen = await asyncio.create_task(asyncio.to_thread(remaining))
    assert seen is not None and seen <= 50


class _SlowToOpen(FileSessionStore):
    """A file store whose client takes as long to open as ``release`` lets it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await asyncio.to_thread(self.release.wait, 30)

    def _open_sync(self) -> None:
        self.release.wait(30)


async def test_opening_the_async_client_is_within_the_deadline(tmp_path: Path) -> None:
    store = _SlowToOpen(tmp_path)
    try:
        with (
            sessionstore.deadline(0.2),
            pytest.raises(StoreUnavailableError, match="deadline.* while opening its client;"),
        ):
            await asyncio.wait_for(store.save("s", {"tick": 1}), timeout=20)
    finally:
        store.release.set()
    await store.save("s", {"tick": 1})  # opened on the next call
    assert await store.load("s") == {"tick": 1}


def test_opening_the_sync_client_is_within_the_deadline(tmp_path: Path) -> None:
    store = _SlowToOpen(tmp_path)
    sync = SyncSessionStore(store)
    assert sync.on_callers_thread

    def invocation() -> None:
        with sessionstore.deadline(0.2):
            sync.save("s", {"tick": 1})

    try:
        with (
            ThreadPoolExecutor(1) as pool,
            pytest.raises(StoreUnavailableError, match="deadline.* while opening its client;"),
        ):
            pool.submit(invocation).result(timeout=20)
    finally:
        store.release.set()
    sync.save("s", {"tick": 1})  # the cut-off open finished meanwhile, or opens now
    assert sync.load("s") == {"tick": 1}
    sync.close()


class _Stalling(MemorySessionStore):
    """A memory store whose reads never answer (until the caller's deadline)."""

    async def _get(self, key: str) -> StoredObject:
        await asyncio.sleep(30)
        raise AssertionError("the deadline cuts the read off first")


async def test_a_deadline_passed_during_an_attempt_names_the_attempt() -> None:
    store = _Stalling()
    await store.save("s", {"tick": 1})  # opened: the deadline can only pass in the read
    with sessionstore.deadline(0.5), pytest.raises(StoreUnavailableError) as info:
        await asyncio.wait_for(store.load("s"), timeout=20)
    assert "ran out of the caller's deadline (sessionstore.deadline) on attempt 1;" in str(
        info.value
    )


class _Unreachable(MemorySessionStore):
    """A memory store whose writes always fail as if the network were down."""

    class Down(Exception):
        pass

    def _classify(self, exc: Exception) -> type[Fault]:
        return Transient if isinstance(exc, self.Down) else super()._classify(exc)

    async def _put(self, key: str, body: bytes, **kw: Any) -> str:
        raise self.Down("injected")


async def test_attempts_used_up_within_a_deadline_say_so() -> None:
    # Outside a block the message has no such words (why only 2 attempts then).
    store = _Unreachable(retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001))
    with pytest.raises(StoreUnavailableError) as outside:
        await store.save("s", {"tick": 1})
    assert "failed after 2 attempt(s) (" in str(outside.value)
    with sessionstore.deadline(3600), pytest.raises(StoreUnavailableError) as inside:
        await store.save("s", {"tick": 1})
    assert "failed after 2 attempt(s) within the caller's deadline (" in str(inside.value)


async def test_a_call_on_a_deadline_thread_hands_its_error_over() -> None:
    """`_on_daemon_thread` runs a sync-API call under a deadline: the call's error
    reaches the caller, from a daemon thread (a cut-off request never holds up the
    process's exit) named for thread dumps."""
    started, ran = threading.Event(), []

    def failing() -> None:
        ran.append(threading.current_thread())
        started.set()
        raise KeyError("from the call")

    done = _on_daemon_thread(failing)
    assert started.wait(15)
    # No timed wait: the thread queues the outcome before it ends, and one turn of the
    # loop then runs it.
    ran[0].join(15)
    await asyncio.sleep(0)
    assert done.done()
    with pytest.raises(KeyError, match="from the call"):
        done.result()
    assert ran[0].daemon
    assert ran[0].name == "sessionstore-deadline"


def test_a_late_outcome_after_the_callers_loop_closed_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The caller gave up and its loop is gone: the thread ends quietly, nothing printed.
    failures: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    started, release, ran = threading.Event(), threading.Event(), []

    def late() -> str:
        ran.append(threading.current_thread())
        started.set()
        release.wait(15)
        return "too late"

    async def start() -> None:
        _on_daemon_thread(late)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(start())
        assert started.wait(15)
    finally:
        loop.close()
    release.set()
    ran[0].join(15)
    assert not ran[0].is_alive()
    assert failures == []

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

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, wait_fixed

import sessionstore
from sessionstore import (
    FileSessionStore,
    MemorySessionStore,
    StoreConfigError,
    StoreUnavailableError,
    SyncSessionStore,
)
from sessionstore.deadline import remaining, stop_at_deadline


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
        with sessionstore.deadline(0.2), pytest.raises(StoreUnavailableError, match="opening"):
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
        with ThreadPoolExecutor(1) as pool, pytest.raises(StoreUnavailableError, match="opening"):
            pool.submit(invocation).result(timeout=20)
    finally:
        store.release.set()
    sync.save("s", {"tick": 1})  # the cut-off open finished meanwhile, or opens now
    assert sync.load("s") == {"tick": 1}
    sync.close()

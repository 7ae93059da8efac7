"""sessionstore.deadline(): the block, its nesting and its tenacity stop condition.

The end-to-end cases (retries and stalled requests on every cloud, both APIs) are in
tests/reliability/test_deadline.py.
"""

import asyncio
import math

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, wait_fixed

import sessionstore
from sessionstore import MemorySessionStore, StoreConfigError, StoreUnavailableError
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

"""MemorySessionStore passes the contract; stores of one test share one dict."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sessionstore import MemorySessionStore
from tests.contract import MakeStore, StoreContract, snapshot


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def make_store(self) -> AsyncIterator[MakeStore]:
        first = MemorySessionStore()

        def make(**options: Any) -> MemorySessionStore:
            store = MemorySessionStore(**options)
            store._objects, store._counter = first._objects, first._counter
            return store

        yield make


async def test_lru_evicts_least_recently_used() -> None:
    store = MemorySessionStore(max_size=2)
    await store.save("a", snapshot("a"))
    await store.save("b", snapshot("b"))
    await store.load("a")
    await store.save("c", snapshot("c"))
    assert await store.list() == ["a", "c"]

"""Faults between each cloud store and its emulator lose nothing.

The stores talk to their emulator through tests/reliability/faultproxy.py, which
answers provider-shaped 500/503s, drops connections before forwarding and drops
responses after the write was applied.
"""

import time
from collections.abc import AsyncIterator

import pytest

from sessionstore import RetryPolicy, StoreAccessError, StoreUnavailableError
from sessionstore.testing import Emulator, purge_prefix
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.scenario import build_store, run_faults, upstream_of


@pytest.fixture
async def prefix(provider: str, emulator: Emulator, unique_prefix: str) -> AsyncIterator[str]:
    yield unique_prefix
    async with build_store(provider, emulator, None, unique_prefix) as store:
        await purge_prefix(store)


async def test_thirty_percent_faults_lose_nothing(
    provider: str, emulator: Emulator, prefix: str
) -> None:
    figures = await run_faults(provider, emulator, prefix, rate=0.3, seed=7)
    print(figures)
    assert figures.errors == []
    assert figures.lost == 0 and figures.doubled == 0
    faulted = sum(figures.faults.values())
    assert 0.2 < faulted / figures.requests < 0.4
    assert all(figures.faults.get(kind, 0) > 0 for kind in ("error", "reset", "lost"))


async def test_lost_create_response_is_a_success(
    provider: str, emulator: Emulator, prefix: str
) -> None:
    async with FaultProxy(upstream_of(provider, emulator), provider, 1.0, 0, kinds=("lost",)) as p:
        store = build_store(provider, emulator, p.url, prefix, retry=RetryPolicy(attempts=2))
        async with store:
            p.rate = 1.0
            calls = 0
            original = p._draw

            def lose_first() -> str | None:  # lose the first answer only
                nonlocal calls
                calls += 1
                return "lost" if calls == 1 else None

            p._draw = lose_first  # type: ignore[method-assign]
            version = await store.save("created", {"tick": 1}, if_absent=True)
            p._draw = original  # type: ignore[method-assign]
        assert p.faults["lost"] == 1
    async with build_store(provider, emulator, None, prefix) as direct:
        got = await direct.load_versioned("created")
        assert got is not None and got.snapshot == {"tick": 1} and got.version == version


async def test_403_fails_on_exactly_one_request(provider: str, emulator: Emulator) -> None:
    async with FaultProxy(upstream_of(provider, emulator), provider, mode="403") as proxy:
        async with build_store(provider, emulator, proxy.url, "p/") as store:
            with pytest.raises(StoreAccessError):
                await store.save("s", {"tick": 1})
        assert proxy.requests == 1


async def test_503_everywhere_ends_after_attempts(provider: str, emulator: Emulator) -> None:
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, deadline=10)
    async with FaultProxy(upstream_of(provider, emulator), provider, mode="503") as proxy:
        async with build_store(provider, emulator, proxy.url, "p/", retry=policy) as store:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="after 4 attempt"):
                await store.load("s")
            assert time.monotonic() - started < policy.deadline
        assert proxy.requests == 4


async def test_deadline_bounds_the_retries(provider: str, emulator: Emulator) -> None:
    policy = RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.2, deadline=1.0)
    async with FaultProxy(upstream_of(provider, emulator), provider, mode="503") as proxy:
        async with build_store(provider, emulator, proxy.url, "p/", retry=policy) as store:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                await store.has("s")
            elapsed = time.monotonic() - started
        assert elapsed < policy.deadline + 1.0 and 1 < proxy.requests < 1000

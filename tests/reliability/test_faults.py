"""Faults between each cloud store and its emulator lose nothing.

The stores talk to their emulator through tests/reliability/faultproxy.py, which
answers provider-shaped 500/503s, drops connections before forwarding and drops
answers after the write was applied, and counts every request it sees.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sessionstore import (
    ConflictError,
    ObjectSessionStore,
    RetryPolicy,
    StoreAccessError,
    StoreUnavailableError,
)
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
    assert 0.25 <= faulted / figures.requests <= 0.35
    assert all(figures.faults.get(kind, 0) > 0 for kind in ("error", "reset", "lost"))


@pytest.mark.parametrize("condition", ["if_absent", "if_version"])
async def test_lost_answer_to_a_conditional_write_is_a_success(
    provider: str, emulator: Emulator, prefix: str, condition: str
) -> None:
    async with build_store(provider, emulator, None, prefix) as direct:
        kwargs: dict[str, Any] = {"if_absent": True}
        if condition == "if_version":
            kwargs = {"if_version": await direct.save("s", {"tick": 0})}
        async with FaultProxy(upstream_of(provider, emulator), provider, script=["lost"]) as p:
            policy = RetryPolicy(attempts=2, base_delay=0.01)
            async with build_store(provider, emulator, p.url, prefix, retry=policy) as store:
                version = await store.save("s", {"tick": 1}, **kwargs)
        assert p.faults["lost"] == 1
        got = await direct.load_versioned("s")
        assert got is not None and got.snapshot == {"tick": 1} and got.version == version


async def test_another_writer_after_a_lost_answer_is_a_conflict(
    provider: str, emulator: Emulator, prefix: str
) -> None:
    """The documented limit: the store cannot tell, so it says conflict, never success."""
    async with build_store(provider, emulator, None, prefix) as other:
        version = await other.save("s", {"tick": 0})
        proxy = FaultProxy(
            upstream_of(provider, emulator),
            provider,
            script=["lost"],
            after_apply=lambda: other.save("s", {"tick": 1, "writer": "other"}),
        )
        async with proxy:
            policy = RetryPolicy(attempts=2, base_delay=0.01)
            async with build_store(provider, emulator, proxy.url, prefix, retry=policy) as store:
                with pytest.raises(ConflictError) as info:
                    await store.save("s", {"tick": 1, "writer": "me"}, if_version=version)
        print(f"{provider}: {info.value}")
        assert await other.load("s") == {"tick": 1, "writer": "other"}


Op = Callable[[ObjectSessionStore], Awaitable[object]]
OPS: dict[str, tuple[Op, dict[str, Any]]] = {
    "save": (lambda s: s.save("s", {"tick": 1}), {}),
    "create": (lambda s: s.save("s", {"tick": 1}, if_absent=True), {}),
    "stale-guarded save": (lambda s: s.save("s", {"tick": 1}), {"reject_stale": True}),
    "load": (lambda s: s.load("s"), {}),
    "has": (lambda s: s.has("s"), {}),
    "delete": (lambda s: s.delete("s"), {}),
    "list": (lambda s: s.list(), {}),
}


@pytest.mark.parametrize("op", OPS)
async def test_403_fails_on_exactly_one_request(provider: str, emulator: Emulator, op: str) -> None:
    call, options = OPS[op]
    async with (
        FaultProxy(upstream_of(provider, emulator), provider, mode=403) as proxy,
        build_store(provider, emulator, proxy.url, "p/", **options) as store,
    ):
        with pytest.raises(StoreAccessError, match="check the credentials"):
            await call(store)
    assert proxy.requests == 1


@pytest.mark.parametrize("op", OPS)
async def test_503_everywhere_ends_after_exactly_attempts_requests(
    provider: str, emulator: Emulator, op: str, caplog: pytest.LogCaptureFixture
) -> None:
    call, options = OPS[op]
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, deadline=10)
    caplog.set_level(logging.WARNING, logger="sessionstore")
    async with FaultProxy(upstream_of(provider, emulator), provider, mode=503) as proxy:
        store = build_store(provider, emulator, proxy.url, "p/", retry=policy, **options)
        async with store:
            with pytest.raises(StoreUnavailableError, match="after 4 attempt"):
                await call(store)
    # Ended by the attempts, not by the deadline: each request is one of the store's
    # attempts, each but the last followed by one retry.
    assert proxy.requests == policy.attempts
    assert caplog.text.count("; retrying") == policy.attempts - 1


async def test_resets_everywhere_end_after_attempts(provider: str, emulator: Emulator) -> None:
    """aiohttp (S3, Azure) re-sends an idempotent request once on a dropped connection,
    below every retry policy, so the wire sees up to twice the store's attempts."""
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, deadline=10)
    async with (
        FaultProxy(upstream_of(provider, emulator), provider, mode="reset") as proxy,
        build_store(provider, emulator, proxy.url, "p/", retry=policy) as store,
    ):
        with pytest.raises(StoreUnavailableError, match="after 4 attempt"):
            await store.save("s", {"tick": 1})
    print(f"{provider}: {proxy.requests} requests for {policy.attempts} attempts")
    assert policy.attempts <= proxy.requests <= 2 * policy.attempts


async def test_deadline_bounds_the_retries(
    provider: str, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    policy = RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.2, deadline=1.0)
    caplog.set_level(logging.WARNING, logger="sessionstore")
    async with (
        FaultProxy(upstream_of(provider, emulator), provider, mode=503) as proxy,
        build_store(provider, emulator, proxy.url, "p/", retry=policy) as store,
    ):
        with pytest.raises(StoreUnavailableError) as raised:
            await store.has("s")
    # What stopped the retries, from what the store did (no wall-clock bound, which a
    # loaded machine moves): not the 1000 attempts, so the deadline, the only other stop
    # without a sessionstore.deadline() block; and every request was one of its attempts.
    attempts = int(raised.value.args[0].split(" failed after ")[1].split(" ")[0])
    assert 1 < attempts < policy.attempts and proxy.requests == attempts
    assert caplog.text.count("; retrying") == attempts - 1

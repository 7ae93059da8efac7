"""sessionstore.deadline() ends store calls in time, through both APIs, on every cloud.

A server that answers 503 forever, and one that never answers at all, sit behind the
fault proxy; the store's own retry policy would go on for minutes, its SDK's read
timeout for tens of seconds. Inside a deadline block the call ends with
StoreUnavailableError naming the deadline instead.
"""

import asyncio
from typing import Any

import pytest

import sessionstore
from sessionstore import RetryPolicy, StoreUnavailableError, SyncSessionStore
from sessionstore.testing import Emulator
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.scenario import build_store, upstream_of

#: A policy that would retry for two minutes: only the caller's deadline can end it.
PATIENT = RetryPolicy(attempts=10_000, base_delay=0.02, max_delay=0.2, deadline=120)
#: SDK timeouts well above the deadline, and low enough to end a stuck test.
TIMEOUTS: dict[str, dict[str, Any]] = {
    "s3": {"read_timeout": 20},
    "gcs": {"timeout": 20},
    "azure": {},
}


async def test_retries_end_at_the_deadline(provider: str, emulator: Emulator) -> None:
    async with FaultProxy(upstream_of(provider, emulator), provider, mode=503) as proxy:
        store = build_store(provider, emulator, proxy.url, "p/", retry=PATIENT)
        async with store:
            with sessionstore.deadline(1.0), pytest.raises(StoreUnavailableError, match="deadline"):
                await store.save("s", {"tick": 1})
    assert 1 <= proxy.requests < 1000


async def test_a_request_without_answer_is_cut_at_the_deadline(
    provider: str, emulator: Emulator
) -> None:
    async with FaultProxy(upstream_of(provider, emulator), provider, mode="stall") as proxy:
        options = TIMEOUTS[provider]
        store = build_store(provider, emulator, proxy.url, "p/", retry=PATIENT, **options)
        async with store:
            with (
                sessionstore.deadline(1.0),
                pytest.raises(StoreUnavailableError, match="ran out of the caller's deadline"),
            ):
                await store.load("s")
    assert proxy.faults["stall"] == 1


async def test_the_sync_api_carries_the_callers_deadline(provider: str, emulator: Emulator) -> None:
    async with FaultProxy(upstream_of(provider, emulator), provider, mode="stall") as proxy:
        options = TIMEOUTS[provider]
        sync = SyncSessionStore(
            build_store(provider, emulator, proxy.url, "p/", retry=PATIENT, **options)
        )

        def invocation() -> None:  # a handler thread: no asyncio in sight
            with sessionstore.deadline(1.0):
                sync.save("s", {"tick": 1})

        try:
            with pytest.raises(StoreUnavailableError, match="ran out of the caller's deadline"):
                await asyncio.to_thread(invocation)
        finally:
            await asyncio.to_thread(sync.close)
    assert proxy.faults["stall"] == 1

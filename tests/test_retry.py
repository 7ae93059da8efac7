"""The retry owner: transient errors retried, others not, mapped onto the error tree.

The store under test is MemorySessionStore with primitives that fail on purpose: a
test of the base class's retry logic, not of any SDK.
"""

import time
from typing import Any

import pytest

from sessionstore import (
    MemorySessionStore,
    RetryPolicy,
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
)
from sessionstore.provider import _AccessDenied, _Fault, _Transient


class Flaky(Exception):
    pass


class Denied(Exception):
    pass


class FlakyStore(MemorySessionStore):
    """Fails the first ``failures`` primitive calls with ``error``."""

    def __init__(self, failures: int, error: type[Exception] = Flaky, **options: Any) -> None:
        super().__init__(**options)
        self.failures, self.error, self.calls = failures, error, 0

    def _classify(self, exc: Exception) -> type[_Fault]:
        if isinstance(exc, Flaky):
            return _Transient
        if isinstance(exc, Denied):
            return _AccessDenied
        return super()._classify(exc)

    async def _put(self, key: str, body: bytes, **kw: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error("injected")
        return await super()._put(key, body, **kw)


FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, deadline=5)


async def test_transient_failures_are_retried() -> None:
    store = FlakyStore(3, retry=FAST)
    await store.save("s", {"tick": 1})
    assert store.calls == 4
    assert await store.load("s") == {"tick": 1}


async def test_exhausted_attempts_raise_unavailable() -> None:
    store = FlakyStore(100, retry=FAST)
    with pytest.raises(StoreUnavailableError, match="after 4 attempt") as info:
        await store.save("s", {"tick": 1})
    assert store.calls == 4
    assert isinstance(info.value.__cause__, Flaky)


async def test_deadline_stops_retrying() -> None:
    store = FlakyStore(
        10_000, retry=RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.05, deadline=0.3)
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await store.save("s", {"tick": 1})
    assert time.monotonic() - started < 0.3 + 0.2
    assert 2 < store.calls < 1000


async def test_access_errors_are_not_retried() -> None:
    store = FlakyStore(100, Denied, retry=FAST)
    with pytest.raises(StoreAccessError):
        await store.save("s", {"tick": 1})
    assert store.calls == 1


@pytest.mark.parametrize(
    "bad", [{"attempts": 0}, {"base_delay": -1}, {"deadline": "x"}, {"max_delay": None}]
)
def test_policy_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(StoreConfigError):
        RetryPolicy(**bad)


async def test_lost_create_response_is_a_success() -> None:
    """A create-only write whose response was lost, then retried, reports success."""

    class LostResponse(FlakyStore):
        async def _put(self, key: str, body: bytes, **kw: Any) -> str:
            self.calls += 1
            version = await MemorySessionStore._put(self, key, body, **kw)
            if self.calls == 1:
                raise Flaky("response lost after the write landed")
            return version

    store = LostResponse(0, retry=FAST)
    version = await store.save("s", {"tick": 1}, if_absent=True)
    assert store.calls == 2
    got = await store.load_versioned("s")
    assert got is not None and got.version == version

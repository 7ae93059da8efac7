"""The retry owner: transient errors retried, others not, mapped onto the error tree.

The store under test is MemorySessionStore with primitives that fail on purpose: a
test of the base class's retry logic, not of any SDK.
"""

import asyncio
import math
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import sessionstore.calls
from sessionstore import (
    ConflictError,
    MemorySessionStore,
    RetryPolicy,
    SessionStoreError,
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
)
from sessionstore.provider import (
    UNCONDITIONAL,
    AccessDenied,
    Fault,
    NotFound,
    PreconditionFailed,
    Transient,
)


class Flaky(Exception):
    pass


class Denied(Exception):
    pass


class FlakyStore(MemorySessionStore):
    """Fails the first ``failures`` primitive calls with ``error``."""

    def __init__(self, failures: int, error: type[Exception] = Flaky, **options: Any) -> None:
        super().__init__(**options)
        self.failures, self.error, self.calls = failures, error, 0

    def _classify(self, exc: Exception) -> type[Fault]:
        if isinstance(exc, Flaky):
            return Transient
        if isinstance(exc, Denied):
            return AccessDenied
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
    # 1000 attempts up to 10 ms apart take seconds: the 1 s deadline ends them first
    # (no timed assertion: the count of attempts tells, however loaded the machine).
    store = FlakyStore(
        10_000, retry=RetryPolicy(attempts=1000, base_delay=0.01, max_delay=0.01, deadline=1)
    )
    with pytest.raises(StoreUnavailableError):
        await store.save("s", {"tick": 1})
    assert 1 < store.calls < 1000


async def test_access_errors_are_not_retried() -> None:
    store = FlakyStore(100, Denied, retry=FAST)
    with pytest.raises(StoreAccessError):
        await store.save("s", {"tick": 1})
    assert store.calls == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"attempts": 0}, "attempts must be an int in 1..1000000, not 0"),
        ({"attempts": 2.0}, "attempts must be an int in 1..1000000, not 2.0"),
        ({"base_delay": -1}, "base_delay must be a number of seconds >= 0 and <= 3600, not -1"),
        ({"max_delay": None}, "max_delay must be a number of seconds >= 0 and <= 3600, not None"),
        ({"deadline": "x"}, "deadline must be a number of seconds > 0 and <= 3600, not 'x'"),
        ({"deadline": 0}, "deadline must be a number of seconds > 0 and <= 3600, not 0"),
        ({"deadline": -1.5}, "deadline must be a number of seconds > 0 and <= 3600, not -1.5"),
        ({"attempts": True}, "attempts must be an int in 1..1000000, not True"),
        ({"attempts": False}, "attempts must be an int in 1..1000000, not False"),
        ({"base_delay": True}, "base_delay must be a number of seconds >= 0 and <= 3600, not True"),
        (
            {"max_delay": math.nan},
            "max_delay must be a number of seconds >= 0 and <= 3600, not nan",
        ),
        ({"deadline": True}, "deadline must be a number of seconds > 0 and <= 3600, not True"),
        ({"deadline": math.nan}, "deadline must be a number of seconds > 0 and <= 3600, not nan"),
        ({"attempts": 1_000_001}, "attempts must be an int in 1..1000000, not 1000001"),
        ({"base_delay": 3600.5}, "base_delay must be a number of seconds >= 0 and <= 3600"),
        ({"max_delay": 1e300}, "max_delay must be a number of seconds >= 0 and <= 3600"),
        ({"deadline": 1e300}, "deadline must be a number of seconds > 0 and <= 3600, not 1e\\+300"),
    ],
    ids=[
        "zero-attempts",
        "float-attempts",
        "negative-delay",
        "none-max",
        "str-deadline",
        "zero-deadline",
        "negative-deadline",
        "true-attempts",
        "false-attempts",
        "true-delay",
        "nan-max",
        "true-deadline",
        "nan-deadline",
        "too-many-attempts",
        "long-delay",
        "huge-max",
        "huge-deadline",
    ],
)
def test_policy_validation(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreConfigError, match=f"RetryPolicy.{message}"):
        RetryPolicy(**bad)


def test_policy_smallest_valid_values() -> None:
    policy = RetryPolicy(attempts=1, base_delay=0, max_delay=0, deadline=0.001)
    assert (policy.attempts, policy.base_delay, policy.max_delay) == (1, 0, 0)


def test_default_policy() -> None:
    """The documented defaults: 5 attempts, 50 ms base, 2 s cap, 20 s deadline."""
    assert RetryPolicy() == RetryPolicy(attempts=5, base_delay=0.05, max_delay=2.0, deadline=20.0)
    assert MemorySessionStore().retry == RetryPolicy()


async def test_default_policy_retries_five_times() -> None:
    store = FlakyStore(100)
    with pytest.raises(StoreUnavailableError, match="after 5 attempt") as info:
        await store.save("s", {"tick": 1})
    assert store.calls == 5
    assert str(info.value) == (
        "memory save memory:///s.json failed after 5 attempt(s) (Flaky); the store is unavailable"
    )


@pytest.mark.parametrize(
    ("policy", "bounds"),
    [
        (RetryPolicy(), [0.1, 0.2, 0.4, 0.8]),  # the default: 50 ms * 2**n
        (RetryPolicy(attempts=5, base_delay=0.001, max_delay=60), [0.002, 0.004, 0.008, 0.016]),
        (RetryPolicy(attempts=5, base_delay=60, max_delay=0.003), [0.003] * 4),
    ],
    ids=["default", "base-delay", "max-delay"],
)
async def test_waits_grow_from_the_base_delay_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch, policy: RetryPolicy, bounds: list[float]
) -> None:
    """Attempt n waits a random time in [0, min(max_delay, base_delay * 2**n)]."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # no real waiting
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    store = FlakyStore(100, retry=policy)
    with pytest.raises(StoreUnavailableError, match="after 5 attempt"):
        await store.save("s", {"tick": 1})
    assert len(waits) == 4
    assert all(0 <= wait <= bound for wait, bound in zip(waits, bounds, strict=True)), waits


class LostResponse(FlakyStore):
    """Every write lands; the response of write number ``lost`` is lost."""

    def __init__(self, lost: int, **options: Any) -> None:
        super().__init__(0, **options)
        self.lost = lost

    async def _put(self, key: str, body: bytes, **kw: Any) -> str:
        self.calls += 1
        version = await MemorySessionStore._put(self, key, body, **kw)
        if self.calls == self.lost:
            raise Flaky("response lost after the write landed")
        return version


async def test_lost_create_response_is_a_success() -> None:
    """A create-only write whose response was lost, then retried, reports success."""
    store = LostResponse(1, retry=FAST)
    version = await store.save("s", {"tick": 1}, if_absent=True)
    assert store.calls == 2
    got = await store.load_versioned("s")
    assert got is not None and got.version == version


async def test_lost_if_version_response_is_a_success() -> None:
    """A conditional write whose response was lost, then retried, recognises its own write."""
    store = LostResponse(2, retry=FAST)
    v1 = await store.save("s", {"tick": 1})
    v2 = await store.save("s", {"tick": 2}, if_version=v1)
    assert store.calls == 3
    got = await store.load_versioned("s")
    assert got is not None and got.version == v2 and got.snapshot == {"tick": 2}


async def test_another_writer_after_a_lost_response_is_a_conflict() -> None:
    class LostThenOverwritten(FlakyStore):
        async def _put(self, key: str, body: bytes, **kw: Any) -> str:
            self.calls += 1
            if self.calls == 2:
                await MemorySessionStore._put(self, key, body, **kw)
                await MemorySessionStore._put(
                    self, key, b'{"tick": 99}', **dict(kw, condition=UNCONDITIONAL, metadata={})
                )
                raise Flaky("response lost; another writer landed since")
            return await MemorySessionStore._put(self, key, body, **kw)

    store = LostThenOverwritten(0, retry=FAST)
    v1 = await store.save("s", {"tick": 1})
    with pytest.raises(ConflictError) as info:
        await store.save("s", {"tick": 2}, if_version=v1)
    assert str(info.value) == (
        f"memory save memory:///s.json: it is not at version {v1} (an earlier attempt's"
        " response was lost; another writer's object is there now)"
    )
    assert await store.load("s") == {"tick": 99}


class Broken(FlakyStore):
    """Raises ``fault`` from the primitive named ``broken``, every time, counting calls."""

    def __init__(self, broken: str, fault: Exception, **options: Any) -> None:
        super().__init__(0, retry=FAST, **options)
        self.broken, self.fault, self.failed = broken, fault, 0

    def _fail(self, name: str) -> None:
        if name == self.broken:
            self.failed += 1
            raise self.fault

    async def _put(self, key: str, body: bytes, **kw: Any) -> str:
        self._fail("put")
        return await super()._put(key, body, **kw)

    async def _get(self, key: str) -> Any:
        self._fail("get")
        return await super()._get(key)

    async def _head(self, key: str) -> Any:
        self._fail("head")
        return await super()._head(key)

    async def _delete(self, key: str, **kw: Any) -> None:
        self._fail("delete")
        await super()._delete(key, **kw)

    async def _list_page(self, prefix: str, **kw: Any) -> Any:
        self._fail("list")
        return await super()._list_page(prefix, **kw)


OPERATIONS = [
    pytest.param("put", "save", {}, lambda s: s.save("s", {"tick": 1}), id="save-put"),
    pytest.param("get", "load", {}, lambda s: s.load("s"), id="load-get"),
    pytest.param("get", "load", {}, lambda s: s.load_versioned("s"), id="load_versioned-get"),
    pytest.param("head", "head", {}, lambda s: s.has("s"), id="has-head"),
    pytest.param("delete", "delete", {}, lambda s: s.delete("s"), id="delete-delete"),
    pytest.param("delete", "delete", {}, lambda s: s.delete("s", if_version="1"), id="cas-delete"),
    pytest.param("list", "list", {}, lambda s: s.list(), id="list-list"),
    pytest.param("list", "list", {}, lambda s: s.purge_expired(timedelta(days=1)), id="purge-list"),
    pytest.param(
        "head",
        "head",
        {"reject_stale": True},
        lambda s: s.save("s", {"tick": 2}),
        id="stale-save-head",
    ),
    pytest.param(  # the seeded session has no tick metadata: the guard reads it whole
        "get",
        "load",
        {"reject_stale": True},
        lambda s: s.save("s", {"tick": 2}),
        id="stale-save-get",
    ),
]


async def _broken_with_a_session(broken: str, error: Exception, **options: Any) -> Broken:
    store = Broken(broken, error, **options)
    seed = MemorySessionStore()
    await seed.save("s", {"tick": 1})
    store._objects, store._counter = seed._objects, seed._counter
    return store


@pytest.mark.parametrize(("broken", "op", "options", "call"), OPERATIONS)
async def test_an_unclassified_error_is_a_session_store_error(
    broken: str, op: str, options: dict[str, Any], call: Any
) -> None:
    store = await _broken_with_a_session(broken, RuntimeError("injected"), **options)
    with pytest.raises(SessionStoreError) as info:
        await call(store)
    assert type(info.value) is SessionStoreError
    where = "memory:///s.json" if op != "list" else "memory://"
    assert str(info.value) == f"memory {op} {where} failed (RuntimeError)"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert store.failed == 1  # never retried


@pytest.mark.parametrize(("broken", "op", "options", "call"), OPERATIONS)
async def test_access_errors_map_on_every_operation(
    broken: str, op: str, options: dict[str, Any], call: Any
) -> None:
    store = await _broken_with_a_session(broken, Denied("no"), **options)
    with pytest.raises(StoreAccessError) as info:
        await call(store)
    where = "memory:///s.json" if op != "list" else "memory://"
    assert str(info.value) == (
        f"memory {op} {where} was refused (Denied): check the credentials and that memory:// exists"
    )
    assert store.failed == 1


@pytest.mark.parametrize(("broken", "op", "options", "call"), OPERATIONS)
async def test_transient_errors_are_retried_on_every_operation(
    broken: str, op: str, options: dict[str, Any], call: Any
) -> None:
    store = await _broken_with_a_session(broken, Flaky("slow down"), **options)
    with pytest.raises(StoreUnavailableError) as info:
        await call(store)
    where = "memory:///s.json" if op != "list" else "memory://"
    assert str(info.value) == (
        f"memory {op} {where} failed after 4 attempt(s) (Flaky); the store is unavailable"
    )
    assert store.failed == 4


async def test_each_retry_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(2, retry=FAST)
    with caplog.at_level("WARNING", logger="sessionstore"):
        await store.save("s", {"tick": 1})
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"sessionstore: memory save memory:///s.json failed on attempt {n} (Flaky); retrying"
        for n in (1, 2)
    ]


async def test_the_attempt_that_succeeds_is_logged_with_its_time(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The call layer's own clock (time.monotonic), read when the call starts and ends.
    readings = iter([100.0, 100.25])
    monkeypatch.setattr(
        sessionstore.calls, "time", SimpleNamespace(monotonic=lambda: next(readings))
    )
    store = FlakyStore(2, retry=FAST)
    with caplog.at_level("DEBUG", logger="sessionstore"):
        await store.save("s", {"tick": 1})
    assert "sessionstore: memory save memory:///s.json ok (attempt 3, 250.0 ms)" in [
        r.getMessage() for r in caplog.records if r.levelname == "DEBUG"
    ]


UNEXPECTED_FAULTS = [
    pytest.param("get", "load", lambda s: s.load("s"), id="load-get"),
    pytest.param("head", "head", lambda s: s.has("s"), id="has-head"),
    pytest.param("list", "list", lambda s: s.list(), id="list-list"),
]


@pytest.mark.parametrize(("broken", "op", "call"), UNEXPECTED_FAULTS)
async def test_a_fault_no_operation_expects_leaves_as_a_public_error(
    broken: str, op: str, call: Any
) -> None:
    # A 412 on a read is no condition of ours: it must not escape as a private type.
    store = await _broken_with_a_session(broken, PreconditionFailed("odd 412"))
    with pytest.raises(SessionStoreError) as info:
        await call(store)
    where = "memory:///s.json" if op != "list" else "memory://"
    assert str(info.value) == f"memory {op} {where} failed (odd 412)"
    assert store.failed == 1


class NotFoundOnPut(MemorySessionStore):
    """Answers a PUT with not-found: a missing bucket, or (if_version) a missing object."""

    async def _put(self, key: str, body: bytes, **kw: Any) -> str:
        if kw["condition"].version is None or key not in self._objects:
            raise NotFound("NoSuchKey, HTTP 404")
        return await super()._put(key, body, **kw)


async def test_a_not_found_answer_to_a_put() -> None:
    # Without a condition it can only mean the bucket is missing; with if_version it
    # means the session is not at that version (GCS and Azure answer 404 there).
    store = NotFoundOnPut(retry=FAST)
    with pytest.raises(StoreAccessError) as missing:
        await store.save("s", {"tick": 1})
    assert str(missing.value) == "memory save memory:///s.json: memory:// does not exist"
    with pytest.raises(ConflictError) as conflict:
        await store.save("s", {"tick": 1}, if_version="7")
    assert type(conflict.value) is ConflictError
    assert str(conflict.value) == "memory save memory:///s.json: it is not at version 7"
    assert isinstance(conflict.value.__cause__, NotFound)
    assert await store.load("s") is None

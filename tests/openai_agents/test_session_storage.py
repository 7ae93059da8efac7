"""ObjectStorageSession's own rules: the stored layout, the store's options (size limit,
compression, TTL), max_items, conflicts, from_url, bad arguments and import hygiene."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from typing import Any, cast

import pytest
from agents.items import TResponseInputItem

from sessionstore import (
    ConflictError,
    InvalidSessionIdError,
    MemorySessionStore,
    ObjectSessionStore,
    RetryPolicy,
    SnapshotDecodeError,
    SnapshotEncodeError,
    SnapshotTooLargeError,
    StoreConfigError,
)
from sessionstore.integrations.openai_agents import (
    FORMAT,
    FORMAT_VERSION,
    ObjectStorageSession,
)
from tests.openai_agents.conftest import CLOUDS, MakeStore
from tests.test_azure import count_requests as count_azure
from tests.test_gcs import count_requests as count_gcs
from tests.test_s3 import count_requests as count_s3


def items(*texts: str) -> list[TResponseInputItem]:
    return cast(list[TResponseInputItem], [{"role": "user", "content": t} for t in texts])


def texts(got: list[TResponseInputItem]) -> list[str]:
    return [cast(dict[str, Any], i)["content"] for i in got]


async def test_layout_is_one_snapshot(store: ObjectSessionStore) -> None:
    session = ObjectStorageSession("user/42", store)
    await session.add_items(items("a", "b"))
    await session.add_items(items("c"))
    assert await session.pop_item() is not None
    assert await store.list() == ["user/42"]
    assert await store.load("user/42") == {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "sessionId": "user/42",
        "tick": 3,
        "items": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    }
    await session.clear_session()
    assert await store.list() == []


@pytest.mark.parametrize("backend", CLOUDS, indirect=True)
async def test_requests_per_operation(store: ObjectSessionStore, backend: str) -> None:
    """Counted at the SDK's HTTP layer: a read is 1 request, a change 2 (read, then
    conditional write), a clear 1, nothing to do 0 or 1."""
    log = await {"s3": count_s3, "gcs": count_gcs, "azure": count_azure}[backend](store)
    session = ObjectStorageSession("s", store)

    async def sent(call: Any) -> int:
        before = len(log())
        await call
        return len(log()) - before

    assert await sent(session.get_items()) == 1
    assert await sent(session.pop_item()) == 1  # empty: nothing written
    assert await sent(session.add_items([])) == 0
    assert await sent(session.add_items(items("a", "b"))) == 2  # creates it
    assert await sent(session.add_items(items("c"))) == 2
    assert await sent(session.get_items(limit=1)) == 1
    assert await sent(session.pop_item()) == 2
    assert await sent(session.clear_session()) == 1


@pytest.mark.parametrize(
    "foreign",
    [
        {"version": "1.0", "sessionId": "s", "tick": 4, "timeline": []},  # agentick's
        {"format": "other-app", "formatVersion": 1, "tick": 2, "items": [{"a": 1}]},
        {"format": FORMAT, "formatVersion": 1, "tick": "2", "items": []},
        {"format": FORMAT, "formatVersion": 1, "tick": 2, "items": {}},
        {"format": FORMAT, "formatVersion": "1", "tick": 2, "items": []},
    ],
)
async def test_foreign_snapshot_is_refused_and_kept(
    store: ObjectSessionStore, foreign: dict[str, Any]
) -> None:
    await store.save("s", foreign)
    session = ObjectStorageSession("s", store)
    for call in (session.get_items(), session.add_items(items("x")), session.pop_item()):
        with pytest.raises(SnapshotDecodeError, match="not an OpenAI Agents session"):
            await call
    assert await store.load("s") == foreign


async def test_newer_format_is_refused_with_the_fix(store: ObjectSessionStore) -> None:
    newer = {"format": FORMAT, "formatVersion": FORMAT_VERSION + 1, "tick": 1, "items": []}
    await store.save("s", newer)
    with pytest.raises(SnapshotDecodeError, match="upgrade sessionstore"):
        await ObjectStorageSession("s", store).add_items(items("x"))
    assert await store.load("s") == newer


async def test_unserializable_item_writes_nothing(store: ObjectSessionStore) -> None:
    session = ObjectStorageSession("s", store)
    await session.add_items(items("kept"))
    bad = cast(list[TResponseInputItem], [{"role": "user", "content": object()}])
    with pytest.raises(SnapshotEncodeError):
        await session.add_items(items("lost with it") + bad)
    assert texts(await session.get_items()) == ["kept"]


async def test_over_the_size_limit_is_the_stores_error(make_store: MakeStore) -> None:
    session = ObjectStorageSession("s", make_store(max_snapshot_bytes=2_000))
    await session.add_items(items("x" * 1_000))
    with pytest.raises(SnapshotTooLargeError, match="max_snapshot_bytes|limit|exceeds"):
        await session.add_items(items("y" * 1_000))
    assert texts(await session.get_items()) == ["x" * 1_000]


async def test_max_items_keeps_the_newest(make_store: MakeStore) -> None:
    session = ObjectStorageSession("s", make_store(max_snapshot_bytes=5_000), max_items=3)
    for n in range(40):  # 40 x ~120 bytes would not fit without the cap
        await session.add_items(items(f"{n:03d}" + "." * 100))
    assert [t[:3] for t in texts(await session.get_items())] == ["037", "038", "039"]
    await session.add_items(items("a", "b", "c", "d"))
    assert texts(await session.get_items()) == ["b", "c", "d"]


async def test_compression_is_the_stores(make_store: MakeStore) -> None:
    session = ObjectStorageSession("s", make_store(compression="gzip", compress_min_bytes=0))
    await session.add_items(items("zipped " * 500))
    plain = ObjectStorageSession("s", make_store())  # reads either kind
    assert texts(await plain.get_items()) == ["zipped " * 500]


async def test_expired_history_is_empty_and_starts_again(make_store: MakeStore) -> None:
    store = make_store(ttl=timedelta(hours=1))
    await ObjectStorageSession("s", store).add_items(items("old"))
    later = make_store(ttl=timedelta(hours=1))
    real_now = later._now
    later._now = lambda: real_now() + timedelta(hours=2)  # type: ignore[method-assign]
    session = ObjectStorageSession("s", later)
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items(items("new"))  # replaces the expired object
    now = ObjectStorageSession("s", store)  # the real clock: the new write is fresh
    assert texts(await now.get_items()) == ["new"]


async def test_conflicts_are_retried_then_refused(
    store: ObjectSessionStore, make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes the session between every read and write: the change is
    tried ``attempts`` times, then refused with ConflictError, and nothing of it lands."""
    rival = ObjectStorageSession("s", make_store())
    await rival.add_items(items("first"))
    real_load = store.load_versioned
    reads = 0

    async def read_then_rival_writes(session_id: str) -> Any:
        nonlocal reads
        reads += 1
        got = await real_load(session_id)
        await rival.add_items(items(f"rival {reads}"))
        return got

    monkeypatch.setattr(store, "load_versioned", read_then_rival_writes)
    policy = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, deadline=60)
    session = ObjectStorageSession("s", store, conflict_retry=policy)
    with pytest.raises(ConflictError, match="gave up after 4 attempts"):
        await session.add_items(items("mine"))
    with pytest.raises(ConflictError, match="gave up after 4 attempts"):
        await session.pop_item()
    assert reads == 8
    assert "mine" not in texts(await rival.get_items())
    assert len(await rival.get_items()) == 9  # "first" + the rival's 8 writes, none popped


async def test_from_url_shares_one_store_per_url_and_options(tmp_path: Any) -> None:
    url = f"file://{tmp_path}"
    one = ObjectStorageSession.from_url("a", url)
    two = ObjectStorageSession.from_url("b", url, max_items=2)
    other = ObjectStorageSession.from_url("c", url, compression="gzip")
    try:
        assert one.store is two.store
        assert other.store is not one.store
        assert two.max_items == 2
        await one.add_items(items("hello"))
        assert texts(await ObjectStorageSession("a", other.store).get_items()) == ["hello"]
    finally:
        await ObjectStorageSession.aclose_shared()
    assert ObjectStorageSession.from_url("a", url).store is not one.store
    await ObjectStorageSession.aclose_shared()


def test_from_url_bad_url_is_a_config_error() -> None:
    with pytest.raises(StoreConfigError, match="unknown store URL scheme"):
        ObjectStorageSession.from_url("a", "ftp://nowhere/")


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("",), {}, InvalidSessionIdError, "non-empty str"),
        ((42,), {}, InvalidSessionIdError, "non-empty str"),
        (("s", "memory://"), {}, StoreConfigError, "ObjectSessionStore, not str"),
        (("s", None), {"max_items": 0}, StoreConfigError, "max_items"),
        (("s", None), {"max_items": True}, StoreConfigError, "max_items"),
        (("s", None), {"conflict_retry": 3}, StoreConfigError, "conflict_retry"),
        (("s", None), {"session_settings": 5}, StoreConfigError, "session_settings"),
    ],
)
def test_bad_arguments(args: tuple[Any, ...], kwargs: Any, error: type, match: str) -> None:
    if len(args) == 1 or args[1] is None:  # the store is not what the case is about
        args = (args[0], MemorySessionStore())
    with pytest.raises(error, match=match):
        ObjectStorageSession(*args, **kwargs)


def test_unknown_session_settings_are_refused() -> None:
    """test_session_settings_rejects_unknown_dictionary_fields (the SDK's coercion)."""
    with pytest.raises(TypeError, match="limitt"):
        ObjectStorageSession("s", MemorySessionStore(), session_settings={"limitt": 1})


async def test_bad_session_id_for_the_store_sends_nothing() -> None:
    session = ObjectStorageSession("\udc00", MemorySessionStore())
    with pytest.raises(InvalidSessionIdError):
        await session.get_items()
    with pytest.raises(InvalidSessionIdError):
        await session.add_items(items("x"))


async def test_concurrent_adds_in_one_process_lose_nothing(store: ObjectSessionStore) -> None:
    """8 tasks x 25 add_items on one session: exactly 200 items, each once (with a wide
    conflict bound: correctness is tested here, not the bound)."""
    patient = RetryPolicy(attempts=10_000, base_delay=0.01, max_delay=0.5, deadline=600)
    session = ObjectStorageSession("busy", store, conflict_retry=patient)

    async def writer(task: int) -> None:
        for n in range(25):
            await session.add_items(items(f"{task}-{n}"))

    await asyncio.gather(*(writer(t) for t in range(8)))
    got = texts(await session.get_items())
    assert len(got) == 200
    assert sorted(got) == sorted(f"{t}-{n}" for t in range(8) for n in range(25))
    for t in range(8):  # each task's items in the order it added them
        assert [g for g in got if g.startswith(f"{t}-")] == [f"{t}-{n}" for n in range(25)]


def test_missing_sdk_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['agents'] = None\n"
        "try:\n"
        "    import sessionstore.integrations.openai_agents\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'sessionstore[openai-agents]'" in result.stdout, result.stderr

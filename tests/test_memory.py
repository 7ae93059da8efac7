"""MemorySessionStore passes the contract; stores of one test share one dict."""

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import (
    ConflictError,
    MemorySessionStore,
    SnapshotDecodeError,
    StaleSnapshotError,
    StoreAccessError,
    StoreConfigError,
)
from sessionstore.provider import UNCONDITIONAL, Condition
from tests.contract import AsyncStoreContract, MakeStore, SyncStoreContract, put_raw, snapshot


def sharing_one_dict() -> MakeStore:
    """A factory of memory stores that all see one dict of objects."""
    first = MemorySessionStore()

    def make(**options: Any) -> MemorySessionStore:
        store = MemorySessionStore(**options)
        store._objects, store._counter = first._objects, first._counter
        return store

    return make


@pytest.fixture
def store_url() -> tuple[str, dict[str, str]]:
    """The URL of the contract's subprocess checks (a memory store of their own)."""
    return "memory://", {}


class TestMemoryStore(AsyncStoreContract):
    @pytest.fixture
    def make_store(self) -> MakeStore:
        return sharing_one_dict()


class TestMemorySyncStore(SyncStoreContract):
    @pytest.fixture
    def make_async_store(self) -> MakeStore:
        return sharing_one_dict()


async def test_lru_evicts_least_recently_used() -> None:
    store = MemorySessionStore(max_size=2)
    await store.save("a", snapshot("a"))
    await store.save("b", snapshot("b"))
    await store.load("a")
    await store.save("c", snapshot("c"))
    assert await store.list() == ["a", "c"]


async def test_lru_counts_a_save_as_a_use() -> None:
    store = MemorySessionStore(max_size=2)
    await store.save("a", snapshot("a"))
    await store.save("b", snapshot("b"))
    await store.save("a", snapshot("a", tick=2))  # re-saved: now the most recent
    await store.save("c", snapshot("c"))
    assert await store.list() == ["a", "c"]
    await store.has("a")  # a HEAD is not a use
    await store.save("d", snapshot("d"))
    assert await store.list() == ["c", "d"]


async def test_lru_a_look_is_not_a_use() -> None:
    """has(), a listing and iter_info() leave the order alone; a versioned load is a use."""
    store = MemorySessionStore(max_size=2)
    await store.save("a", snapshot("a"))
    await store.save("b", snapshot("b"))
    assert await store.has("a") and await store.list() == ["a", "b"]
    assert [i.session_id async for i in store.iter_info()] == ["a", "b"]
    await store.save("c", snapshot("c"))  # "a" is still the least recently used
    assert await store.list() == ["b", "c"]
    assert await store.load_versioned("b") is not None
    await store.save("d", snapshot("d"))
    assert await store.list() == ["b", "d"]


async def test_max_size_one_and_validation() -> None:
    store = MemorySessionStore(max_size=1)
    await store.save("a", snapshot("a"))
    await store.save("b", snapshot("b"))
    assert await store.list() == ["b"]
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(StoreConfigError, match=r"max_size must be an int in 1\.\.1000000000"):
            MemorySessionStore(max_size=bad)  # type: ignore[arg-type]


async def test_prefix_separates_stores_sharing_one_dict() -> None:
    plain, prefixed = MemorySessionStore(), MemorySessionStore(prefix="p/q")
    prefixed._objects, prefixed._counter = plain._objects, plain._counter
    await plain.save("s", snapshot("plain"))
    await prefixed.save("s", snapshot("prefixed"))
    assert sorted(plain._objects) == ["p/q/s.json", "s.json"]
    assert await plain.list() == ["s"] and await prefixed.list() == ["s"]
    assert await prefixed.load("s") == snapshot("prefixed")
    await prefixed.delete("s")
    assert await plain.load("s") == snapshot("plain")
    assert repr(prefixed) == "MemorySessionStore('memory://', prefix='p/q/')"


class Counting(MemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.opened = self.closed = 0

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await asyncio.sleep(0)  # let concurrent first uses meet here
        self.opened += 1
        stack.callback(self._count_close)

    def _count_close(self) -> None:
        self.closed += 1


async def test_open_once_close_once_and_reopen() -> None:
    store = Counting()
    await asyncio.gather(*(store.save(f"s{i}", snapshot()) for i in range(5)))
    assert (store.opened, store.closed) == (1, 0)
    await store.aclose()
    await store.aclose()
    assert (store.opened, store.closed) == (1, 1)
    assert await store.list() == [f"s{i}" for i in range(5)]  # reopens on first use
    assert (store.opened, store.closed) == (2, 1)
    async with store as entered:
        assert entered is store
    assert (store.opened, store.closed) == (2, 2)
    async with Counting() as fresh:
        assert fresh.opened == 1
    assert fresh.closed == 1


async def test_ttl_boundary_on_load_and_has() -> None:
    store = MemorySessionStore(ttl=timedelta(hours=1))
    await store.save("s", snapshot())
    [info] = [info async for info in store.iter_info()]
    assert info.last_modified is not None
    store._now = lambda: info.last_modified + timedelta(hours=1)  # type: ignore[method-assign,operator]
    assert await store.load("s") == snapshot() and await store.has("s")  # exactly the ttl
    assert [i.session_id async for i in store.iter_info()] == ["s"]
    store._now = lambda: info.last_modified + timedelta(hours=1, microseconds=1)  # type: ignore[method-assign,operator]
    assert await store.load("s") is None and not await store.has("s")
    assert await store.list() == []


async def test_metadata_written_with_each_kind_of_save() -> None:
    """The write id only where it is read back (conditional saves); codec and tick always."""
    store = MemorySessionStore(compression="gzip", compress_min_bytes=10)
    await store.save("plain", {"a": 1})
    await store.save("packed", {"a": "x" * 100})
    await store.save("created", {"a": 1}, if_absent=True)
    stale = MemorySessionStore(reject_stale=True)
    stale._objects, stale._counter = store._objects, store._counter
    await stale.save("ticked", {"tick": 4})

    async def metadata(session_id: str) -> dict[str, str]:
        return dict((await store._head(store._key(session_id))).metadata)

    assert await metadata("plain") == {}
    assert await metadata("packed") == {"sessionstore-encoding": "gzip"}
    assert set(await metadata("created")) == {"sessionstore-write-id"}
    assert (await metadata("ticked"))["sessionstore-tick"] == "4"
    assert set(await metadata("ticked")) == {"sessionstore-write-id", "sessionstore-tick"}


async def test_bodies_under_1024_bytes_are_stored_plain_by_default() -> None:
    store = MemorySessionStore(compression="gzip")
    for size, encoding in [(1023, None), (1024, "gzip")]:
        snap = {"a": "x" * (size - len('{"a":""}'))}
        await store.save(f"s{size}", snap)
        info = await store._head(store._key(f"s{size}"))
        assert info.metadata.get("sessionstore-encoding") == encoding, size
        assert await store.load(f"s{size}") == snap


def test_a_bad_ttl_is_named() -> None:
    with pytest.raises(StoreConfigError) as info:
        MemorySessionStore(ttl=5)  # type: ignore[arg-type]
    assert str(info.value) == "ttl must be a positive timedelta or None, not 5"


def test_a_store_that_follows_no_loop_keeps_its_client_across_loops() -> None:
    store = Counting()
    for i in range(3):
        asyncio.run(store.save("s", snapshot(tick=i)))
    assert (store.opened, store.closed) == (1, 0)
    asyncio.run(store.aclose())
    assert (store.opened, store.closed) == (1, 1)


class CountingPages(MemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.pages = 0

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Any:
        self.pages += 1
        return await super()._list_page(prefix, page_size=page_size, token=token)


async def test_one_listing_request_per_page() -> None:
    store = CountingPages()
    for i in range(6):
        await store.save(f"s{i}", snapshot())
    assert len([i async for i in store.iter_ids(page_size=3)]) == 6
    assert store.pages == 2  # a full last page needs no third request
    store.pages = 0
    assert len([i async for i in store.iter_ids(page_size=4)]) == 6
    assert store.pages == 2
    store.pages = 0
    assert len([i async for i in store.iter_ids(page_size=1000)]) == 6
    assert store.pages == 1


async def test_a_listing_that_finds_no_container_is_an_access_error() -> None:
    class NoContainer(MemorySessionStore):
        async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Any:
            return await self._get("the container")  # the store's own not-found error

    with pytest.raises(StoreAccessError) as info:
        await NoContainer().list()
    assert str(info.value) == (
        "memory list memory:// failed (the container): memory:// does not exist"
    )


class CountingReads(MemorySessionStore):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.gets = 0

    async def _get(self, key: str) -> Any:
        self.gets += 1
        return await super()._get(key)


async def test_the_stale_guard_reads_the_tick_from_metadata() -> None:
    """One HEAD and one PUT per save: the body is read only when the tick is not there."""
    store = CountingReads(reject_stale=True)
    await store.save("s", snapshot(tick=1))
    await store.save("s", snapshot(tick=2))
    assert store.gets == 0
    plain = CountingReads()
    plain._objects, plain._counter = store._objects, store._counter
    await plain.save("s", snapshot(tick=3))  # written without the tick metadata
    with pytest.raises(StaleSnapshotError):
        await store.save("s", snapshot(tick=2))
    assert store.gets == 1


async def test_the_stale_guard_names_a_corrupt_stored_object() -> None:
    store = MemorySessionStore(reject_stale=True)
    await put_raw(store, "s.json", b"{not json")
    with pytest.raises(SnapshotDecodeError) as info:
        await store.save("s", snapshot(tick=2))
    assert str(info.value).startswith("memory:///s.json is not a valid snapshot: ")


@pytest.mark.parametrize("another_create", [False, True], ids=["absent", "created-again"])
async def test_if_absent_when_a_blocking_session_is_deleted_meanwhile(
    another_create: bool,
) -> None:
    """With a ttl, a failed create looks at the session: if it was deleted meanwhile,
    the create is tried again, still on condition that nothing is there."""

    class Racing(MemorySessionStore):
        heads = puts = 0

        async def _head(self, key: str) -> Any:
            self.heads += 1
            if self.heads == 2:  # the look after the failed create (the first is ours)
                del self._objects[key]  # another client deletes the session
            return await super()._head(key)

        async def _put(self, key: str, body: bytes, **kw: Any) -> str:
            self.puts += 1
            if self.puts == 2 and another_create:  # and yet another creates it again
                await super()._put(
                    key, b'{"tick": 7}', **dict(kw, condition=UNCONDITIONAL, metadata={})
                )
            return await super()._put(key, body, **kw)

    store = Racing(ttl=timedelta(hours=1))
    await MemorySessionStore.save(store, "s", snapshot(tick=1))
    store.puts = 0
    if another_create:
        with pytest.raises(ConflictError) as info:
            await store.save("s", snapshot(tick=2), if_absent=True)
        assert str(info.value) == "memory save memory:///s.json: it already exists"
        assert await store.load("s") == {"tick": 7}
    else:
        version = await store.save("s", snapshot(tick=2), if_absent=True)
        got = await store.load_versioned("s")
        assert got is not None and got.version == version and got.snapshot == snapshot(tick=2)
    assert store.puts == 2


class TaggedJson:
    """A serializer of another format: JSON behind a tag."""

    content_type = "application/x-tagged-json"

    def dumps(self, obj: Any) -> bytes:
        return b"tagged:" + json.dumps(obj).encode()

    def loads(self, data: bytes) -> Any:
        if not data.startswith(b"tagged:"):
            raise ValueError("no tag")
        return json.loads(data[len(b"tagged:") :])


async def test_an_injected_serializer_writes_and_reads() -> None:
    store = MemorySessionStore(serializer=TaggedJson())
    await store.save("s", snapshot())
    assert store._objects["s.json"].body.startswith(b"tagged:{")
    assert await store.load("s") == snapshot()
    plain = MemorySessionStore()
    plain._objects = store._objects
    with pytest.raises(SnapshotDecodeError):
        await plain.load("s")  # the default serializer reads JSON only


async def test_every_write_passes_the_serializers_content_type() -> None:
    # The memory store keeps none; a cloud store stores what its _put receives.
    seen: list[str] = []

    class Recording(MemorySessionStore):
        async def _put(self, key: str, body: bytes, *, content_type: str, **kw: Any) -> str:
            seen.append(content_type)
            return await super()._put(key, body, content_type=content_type, **kw)

    for store, expected in [
        (Recording(serializer=TaggedJson()), "application/x-tagged-json"),
        (Recording(), "application/json"),
        (Recording(compression="gzip", compress_min_bytes=0), "application/json"),
    ]:
        seen.clear()
        version = await store.save("s", snapshot())
        await store.save("s", snapshot(tick=2), if_version=version)
        await store.save("t", snapshot(), if_absent=True)
        assert seen == [expected] * 3


async def test_a_failed_client_close_is_logged_with_the_stores_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A close that fails is only logged (nothing can be done): the line says whose.
    class FailingClose(MemorySessionStore):
        async def _open(self, stack: contextlib.AsyncExitStack) -> None:
            async def close() -> None:
                raise OSError("connection reset")

            stack.push_async_callback(close)

    store = FailingClose()
    await store.save("s", snapshot())
    with caplog.at_level(logging.DEBUG, logger="sessionstore"):
        await store.aclose()
    assert f"sessionstore: closing {store!r}'s client: OSError('connection reset')" in (
        caplog.messages
    )


class CountsDeletes(MemorySessionStore):
    """Counts the deletes in flight; each waits for the event loop's other tasks once."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.in_flight = self.most = 0

    async def _delete(self, key: str, *, condition: Condition) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0)  # every other started delete gets to start here
            await super()._delete(key, condition=condition)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize(("concurrency", "most"), [(None, 16), (1, 1), (3, 3), (40, 20)])
async def test_purge_prefix_runs_at_most_concurrency_deletes_at_once(
    concurrency: int | None, most: int
) -> None:
    store = CountsDeletes()
    for i in range(20):
        await store.save(f"s{i:02d}", snapshot())
    options = {} if concurrency is None else {"concurrency": concurrency}
    assert await store.purge_prefix(**options) == 20
    assert store.most == most and store.in_flight == 0
    assert store._objects == {}


async def test_purge_prefix_leaves_objects_outside_its_prefix() -> None:
    make = sharing_one_dict()
    root, inner, beside = make(), make(prefix="inner/"), make(prefix="inner-not/")
    for store in (root, inner, beside):
        await store.save("s", snapshot())
    await put_raw(root, "inner/notes.txt", b"{}")  # any name, in this store
    await put_raw(root, "inner/deeper/t.json", b"{}")  # not directly under the prefix
    assert await inner.purge_prefix() == 2
    assert sorted(root._objects) == ["inner-not/s.json", "inner/deeper/t.json", "s.json"]


async def test_purge_prefix_counts_objects_over_several_pages() -> None:
    """Pages of 1000: 2500 objects are three pages, all counted."""
    store = MemorySessionStore()
    for i in range(2500):
        await put_raw(store, f"{i:04d}.json", b"{}")
    assert await store.purge_prefix() == 2500
    assert store._objects == {}

"""The contract every store passes, written once as mixin classes.

A store's test file subclasses :class:`StoreContract` and provides one fixture,
``make_store(**options) -> ObjectSessionStore``, returning stores that share one
backend location and one test-unique prefix (so a second store with other options
reads what the first wrote). Raw objects are written through the store's own
``_put`` primitive, so the suite never needs the SDK.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import math
import os
import random
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import (
    ConflictError,
    InvalidSessionIdError,
    ObjectSessionStore,
    SessionStore,
    SessionStoreError,
    SnapshotDecodeError,
    SnapshotEncodeError,
    SnapshotTooLargeError,
    StaleSnapshotError,
)
from sessionstore.keys import make_key

MakeStore = Callable[..., ObjectSessionStore]

WEIRD_IDS = [
    "plain-id_01",
    "with/slash",
    "../../etc/passwd",
    ".",
    "..",
    "...",
    "space in id",
    "tab\tand\nnewline\x00nul",
    "percent%2Fencoded",
    "ünïcödé-日本語-🙂",
    "a" * 200,
    "UPPER.lower~tilde",
    "?query#frag&amp=1",
    "\\backslash",
]
INVALID_IDS: list[Any] = ["", None, 42, b"bytes", "\udc00lone-surrogate", "x" * 2000]


def _self_containing() -> dict[str, Any]:
    snap: dict[str, Any] = {"timeline": [{"kind": "message"}]}
    snap["timeline"][0]["parent"] = snap
    return snap


def _nested(depth: int) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for _ in range(depth):
        snap = {"d": snap}
    return snap


class Mood(enum.StrEnum):
    CALM = "calm"


class Priority(enum.IntEnum):
    HIGH = 3


def snapshot(session_id: str = "s", tick: int = 1, **extra: Any) -> dict[str, Any]:
    """An agentick-shaped snapshot."""
    return {
        "version": "1.0",
        "sessionId": session_id,
        "tick": tick,
        "timeline": [
            {
                "kind": "message",
                "message": {"role": "user", "content": [{"type": "text", "text": f"hello {i}"}]},
            }
            for i in range(3)
        ],
        "comState": {"counter": tick, "nested": {"a": [1, 2.5, None, True]}},
        "dataCache": {},
        "usage": {"inputTokens": 10, "outputTokens": 20},
        "timestamp": 1_700_000_000_000 + tick,
        **extra,
    }


def big_snapshot(mib: float) -> dict[str, Any]:
    """A snapshot carrying base64 images, ``mib`` MiB in all."""
    image = base64.b64encode(os.urandom(int(mib * 1024 * 1024 * 3 / 4 / 5))).decode()
    snap = snapshot("big")
    snap["timeline"] = [
        {
            "kind": "message",
            "message": {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "base64", "data": image}}],
            },
        }
        for _ in range(5)
    ]
    return snap


async def put_raw(store: ObjectSessionStore, key: str, body: bytes) -> None:
    """Write raw bytes at ``key`` with the store's own primitive."""
    await store._ensure_open()
    await store._put(
        key,
        body,
        content_type="application/octet-stream",
        metadata={},
        if_version=None,
        if_absent=False,
    )


class BasicContract:
    """save / load / delete / has and the agentick protocol."""

    def test_is_a_session_store(self, store: ObjectSessionStore) -> None:
        assert isinstance(store, SessionStore)

    async def test_round_trip_keeps_unknown_fields(self, store: ObjectSessionStore) -> None:
        snap = snapshot("s1", 3, hookField={"x": [1, "two", {"three": 3.0}]}, émoji="🙂")
        version = await store.save("s1", snap)
        assert isinstance(version, str) and version
        assert await store.load("s1") == snap
        versioned = await store.load_versioned("s1")
        assert versioned is not None
        assert versioned.snapshot == snap and versioned.version == version

    async def test_missing_is_none(self, store: ObjectSessionStore) -> None:
        assert await store.load("nope") is None
        assert await store.load_versioned("nope") is None
        assert await store.has("nope") is False

    async def test_has_and_overwrite(self, store: ObjectSessionStore) -> None:
        v1 = await store.save("s", snapshot(tick=1))
        assert await store.has("s") is True
        v2 = await store.save("s", snapshot(tick=2))
        assert v1 != v2
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 2

    async def test_delete_is_idempotent(self, store: ObjectSessionStore) -> None:
        await store.save("s", snapshot())
        await store.delete("s")
        assert await store.load("s") is None
        await store.delete("s")
        await store.delete("never-existed")

    async def test_five_mib_snapshot(self, store: ObjectSessionStore) -> None:
        snap = big_snapshot(5)
        await store.save("big", snap)
        assert await store.load("big") == snap

    async def test_context_manager_and_reopen(self, make_store: MakeStore) -> None:
        async with make_store() as s:
            await s.save("ctx", snapshot())
        async with make_store() as s:
            assert await s.load("ctx") == snapshot()


class IdContract:
    """Any non-empty str id round-trips; bad ids fail before any request."""

    async def test_weird_ids_round_trip_and_list(self, store: ObjectSessionStore) -> None:
        for i, session_id in enumerate(WEIRD_IDS):
            await store.save(session_id, snapshot(session_id, i))
        assert await store.list() == sorted(WEIRD_IDS)
        for i, session_id in enumerate(WEIRD_IDS):
            assert await store.load(session_id) == snapshot(session_id, i)
            assert await store.has(session_id)
        for session_id in WEIRD_IDS:
            await store.delete(session_id)
        assert await store.list() == []

    @pytest.mark.parametrize("bad", INVALID_IDS, ids=repr)
    async def test_invalid_ids_raise_before_writing(
        self, store: ObjectSessionStore, bad: Any
    ) -> None:
        with pytest.raises(InvalidSessionIdError):
            await store.save(bad, snapshot())
        with pytest.raises(InvalidSessionIdError):
            await store.load(bad)
        with pytest.raises(InvalidSessionIdError):
            await store.has(bad)
        with pytest.raises(InvalidSessionIdError):
            await store.delete(bad)
        assert await store.list() == []

    async def test_every_id_whose_key_fits_1024_bytes(self, store: ObjectSessionStore) -> None:
        room = 1024 - len(store.prefix.encode()) - len(".json")
        ids = [
            "中文会话标识" * 10,  # 60 characters, 540 bytes once percent-encoded
            "a" * room,  # a key of exactly 1024 bytes
            "é" * (room // 6),  # 6 bytes each once encoded
            "b" * 251,
        ]
        for i, session_id in enumerate(ids):
            await store.save(session_id, snapshot(session_id, i))
        assert await store.list() == sorted(ids)
        for i, session_id in enumerate(ids):
            assert await store.has(session_id)
            assert await store.load(session_id) == snapshot(session_id, i)
        with pytest.raises(InvalidSessionIdError, match="limit is 1024"):
            await store.save("a" * (room + 1), snapshot())
        for session_id in ids:
            await store.delete(session_id)
        assert await store.list() == []

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(session_id=st.text(min_size=1, max_size=60))
    async def test_generated_ids_round_trip(
        self, store: ObjectSessionStore, session_id: str
    ) -> None:
        try:
            store._key(session_id)
        except InvalidSessionIdError:
            # Lone surrogates: refused before any request, which the tests above cover.
            with pytest.raises(InvalidSessionIdError):
                await store.save(session_id, snapshot(session_id))
            return
        await store.save(session_id, snapshot(session_id))
        assert await store.load(session_id) == snapshot(session_id)
        assert session_id in await store.list()
        await store.delete(session_id)


class EncodingContract:
    """Snapshots that are not JSON write nothing; corrupt objects raise."""

    @pytest.mark.parametrize(
        "bad",
        [
            {"x": math.nan},
            {"x": [1, math.inf]},
            {"x": {1, 2}},
            {"x": b"bytes"},
            {1: "int key"},
            {"x": object()},
            ["not", "an", "object"],
            "a string",
            _self_containing(),
            _nested(300),
            {"x": OrderedDict(y=[math.nan])},
        ],
        ids=lambda bad: repr(bad)[:40],
    )
    async def test_unencodable_snapshot_writes_nothing(
        self, store: ObjectSessionStore, bad: Any
    ) -> None:
        await store.save("keep", snapshot(tick=7))
        with pytest.raises(SnapshotEncodeError):
            await store.save("keep", bad)
        with pytest.raises(SnapshotEncodeError):
            await store.save("new", bad)
        assert await store.load("keep") == snapshot(tick=7)
        assert await store.list() == ["keep"]

    async def test_mappings_and_subclasses_are_stored_as_plain_json(
        self, store: ObjectSessionStore
    ) -> None:
        snap = OrderedDict(
            tick=Priority.HIGH,
            comState=defaultdict(list, mood=[Mood.CALM], nested=OrderedDict(p=Priority.HIGH)),
            dataCache=MappingProxyType({Mood.CALM: 0.5}),
        )
        await store.save("s", snap)
        loaded = await store.load("s")
        assert loaded == {
            "tick": 3,
            "comState": {"mood": ["calm"], "nested": {"p": 3}},
            "dataCache": {"calm": 0.5},
        }
        assert type(loaded["tick"]) is int and type(loaded["comState"]["mood"][0]) is str

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b'{"truncated": ',
            b"[1, 2]",
            b"\x1f\x8b\x08garbage",
            b"\x28\xb5\x2f\xfdzz",
            b"",
        ],
        ids=repr,
    )
    async def test_corrupt_object_raises_decode_error(
        self, store: ObjectSessionStore, body: bytes
    ) -> None:
        await put_raw(store, make_key(store.prefix, "bad"), body)
        with pytest.raises(SnapshotDecodeError) as info:
            await store.load("bad")
        assert "bad.json" in str(info.value)

    async def test_max_snapshot_bytes_on_save_and_load(self, make_store: MakeStore) -> None:
        small = make_store(max_snapshot_bytes=2000)
        with pytest.raises(SnapshotTooLargeError):
            await small.save("s", snapshot(pad="x" * 3000))
        assert await small.load("s") is None
        await make_store().save("s", snapshot(pad="x" * 3000))
        with pytest.raises(SnapshotTooLargeError):
            await small.load("s")
        assert await small.has("s")  # has answers existence; only a load enforces the size

    async def test_decompression_bomb_is_refused(self, make_store: MakeStore) -> None:
        bomb = make_store(compression="gzip")
        await bomb.save("bomb", snapshot(pad="0" * 3_000_000))
        with pytest.raises(SnapshotTooLargeError):
            await make_store(max_snapshot_bytes=100_000).load("bomb")


class CompressionContract:
    """gzip and zstd bodies are recognized by magic bytes, whatever wrote them."""

    @pytest.mark.parametrize("codec", ["gzip", "zstd"])
    async def test_compression_both_ways(self, make_store: MakeStore, codec: str) -> None:
        plain, packed = make_store(), make_store(compression=codec, compress_min_bytes=0)
        snap = big_snapshot(0.2)
        snap["text"] = "compressible " * 5000
        await packed.save("packed", snap)
        await plain.save("plain", snap)
        assert await plain.load("packed") == snap
        assert await packed.load("plain") == snap
        got = await packed._get(make_key(packed.prefix, "packed"))
        assert got.body[:2] in (b"\x1f\x8b", b"\x28\xb5")
        assert len(got.body) < len((await plain._get(make_key(plain.prefix, "plain"))).body)


class ConditionalContract:
    """if_version / if_absent are real conditions."""

    #: How the backend treats ``delete(if_version=)``: "enforced"; "refused" (an
    #: emulator that answers it with an error); "ignored" (an emulator that deletes
    #: regardless, so only the request's shape can be checked, in the store's tests).
    conditional_deletes = "enforced"

    async def test_if_absent(self, store: ObjectSessionStore) -> None:
        await store.save("s", snapshot(tick=1), if_absent=True)
        with pytest.raises(ConflictError):
            await store.save("s", snapshot(tick=2), if_absent=True)
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 1

    async def test_if_version(self, store: ObjectSessionStore) -> None:
        v1 = await store.save("s", snapshot(tick=1))
        v2 = await store.save("s", snapshot(tick=2), if_version=v1)
        with pytest.raises(ConflictError):
            await store.save("s", snapshot(tick=3), if_version=v1)
        with pytest.raises(ConflictError):
            await store.save("missing", snapshot(tick=3), if_version=v1)
        assert await store.load("missing") is None
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 2 and v2

    async def test_conditional_delete(self, store: ObjectSessionStore) -> None:
        v1 = await store.save("s", snapshot(tick=1))
        v2 = await store.save("s", snapshot(tick=2))
        if self.conditional_deletes == "refused":
            # The emulator refuses If-Match on deletes: a clear error, nothing deleted.
            with pytest.raises(SessionStoreError, match="conditional delete"):
                await store.delete("s", if_version=v2)
            assert await store.has("s")
            return
        if self.conditional_deletes == "enforced":
            with pytest.raises(ConflictError):
                await store.delete("s", if_version=v1)
            assert await store.has("s")
        await store.delete("s", if_version=v2)
        assert await store.load("s") is None
        await store.delete("s", if_version=v2)  # absent: no error

    async def test_cas_counter_under_concurrency(self, store: ObjectSessionStore) -> None:
        await store.save("counter", snapshot(tick=0))
        workers, increments = 8, 5

        async def worker() -> None:
            for _ in range(increments):
                while True:
                    current = await store.load_versioned("counter")
                    assert current is not None
                    nxt = dict(current.snapshot, tick=current.snapshot["tick"] + 1)
                    try:
                        await store.save("counter", nxt, if_version=current.version)
                        break
                    except ConflictError:
                        await asyncio.sleep(random.random() / 100)

        await asyncio.gather(*(worker() for _ in range(workers)))
        final = await store.load("counter")
        assert final is not None and final["tick"] == workers * increments

    async def test_racing_creates_have_one_winner(self, make_store: MakeStore) -> None:
        stores = [make_store() for _ in range(10)]

        async def create(i: int) -> int | None:
            try:
                await stores[i].save("race", snapshot(tick=i), if_absent=True)
                return i
            except ConflictError:
                return None

        winners = [
            w for w in await asyncio.gather(*(create(i) for i in range(10))) if w is not None
        ]
        assert len(winners) == 1
        loaded = await stores[0].load("race")
        assert loaded is not None and loaded["tick"] == winners[0]


class StaleContract:
    """reject_stale keeps the highest tick, whatever order saves land in."""

    async def test_shuffled_ticks_keep_the_highest(self, make_store: MakeStore) -> None:
        store = make_store(reject_stale=True)
        ticks = list(range(1, 21))
        random.Random(7).shuffle(ticks)
        results = await asyncio.gather(
            *(store.save("s", snapshot(tick=t)) for t in ticks), return_exceptions=True
        )
        for result in results:
            assert isinstance(result, str | StaleSnapshotError), result
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 20
        with pytest.raises(StaleSnapshotError):
            await store.save("s", snapshot(tick=3))
        await store.save("s", snapshot(tick=20))  # the same tick again is allowed
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 20

    async def test_stale_guard_reads_objects_without_tick_metadata(
        self, make_store: MakeStore
    ) -> None:
        await make_store().save("s", snapshot(tick=9))  # written without the guard
        with pytest.raises(StaleSnapshotError):
            await make_store(reject_stale=True).save("s", snapshot(tick=8))

    async def test_needs_an_integer_tick(self, make_store: MakeStore) -> None:
        with pytest.raises(SnapshotEncodeError):
            await make_store(reject_stale=True).save("s", {"tick": "3"})


class ListContract:
    """list / iter_ids decode only this store's keys, page by page."""

    async def test_list_sorted_and_paged(self, store: ObjectSessionStore) -> None:
        ids = [f"id-{i:02d}" for i in range(7)]
        for session_id in reversed(ids):
            await store.save(session_id, snapshot(session_id))
        assert await store.list() == ids
        paged = [i async for i in store.iter_ids(page_size=3)]
        assert sorted(paged) == ids

    async def test_one_version_token_format(self, store: ObjectSessionStore) -> None:
        """What the listing yields is what save and load_versioned gave: an if_version."""
        saved = await store.save("s", snapshot(tick=1))
        versioned = await store.load_versioned("s")
        assert versioned is not None and versioned.version == saved
        [info] = [i async for i in store.iter_info()]
        assert info.version == saved
        saved = await store.save("s", snapshot(tick=2), if_version=info.version)
        [info] = [i async for i in store.iter_info()]
        assert info.version == saved
        if getattr(self, "conditional_deletes", "enforced") == "enforced":
            await store.delete("s", if_version=info.version)
            assert await store.load("s") is None

    async def test_foreign_objects_are_ignored(self, store: ObjectSessionStore) -> None:
        await store.save("mine", snapshot())
        for key in [
            "notes.txt",
            "no-suffix",
            "nested/deeper.json",
            "bad%zz.json",
            "%2f.json",
            ".json",
            "lower%2fhex.json",
        ]:
            await put_raw(store, store.prefix + key, b"{}")
        assert await store.list() == ["mine"]


class TtlContract:
    """A session not saved within ttl is expired: invisible, then purged."""

    async def test_ttl_expiry_and_purge(self, make_store: MakeStore) -> None:
        store = make_store(ttl=timedelta(hours=1))
        await store.save("old", snapshot())
        await store.save("fresh", snapshot())
        assert await store.load("old") is not None and await store.has("old")
        later = make_store(ttl=timedelta(hours=1))
        real_now = later._now
        later._now = lambda: real_now() + timedelta(hours=2)  # type: ignore[method-assign]
        assert await later.load("old") is None
        assert await later.has("old") is False
        assert await later.list() == []
        if getattr(self, "conditional_deletes", "enforced") == "refused":
            with pytest.raises(SessionStoreError, match="conditional delete"):
                await later.purge_expired()
            return
        assert await later.purge_expired() == 2
        assert await store.list() == []


#: Hooks a store's SDK client; the returned ``log()`` lists the requests sent since.
CountRequests = Callable[[ObjectSessionStore], Awaitable[Callable[[], list[str]]]]


class RequestCountContract:
    """One request per operation, counted at the store's HTTP layer (cloud stores).

    Needs ``count_requests`` (a :data:`CountRequests`, as a staticmethod) and the
    ``make_store`` fixture; every cloud's test file has the same shape.
    """

    count_requests: CountRequests

    @pytest.fixture
    def counted_store(self, make_store: MakeStore) -> Any:
        """An async factory ``(**options) -> (store, log)``."""

        async def make(**options: Any) -> Any:
            store = make_store(**options)
            return store, await type(self).count_requests(store)

        return make

    async def test_one_request_per_operation(self, counted_store: Any) -> None:
        store, log = await counted_store()
        stale, stale_log = await counted_store(reject_stale=True)

        async def sent(op: Any, requests: Any = log) -> int:
            before = len(requests())
            await op
            return len(requests()) - before

        assert await sent(store.save("s", snapshot())) == 1
        assert await sent(store.save("big", big_snapshot(5))) == 1
        assert await sent(store.load("s")) == 1
        assert await sent(store.load("big")) == 1
        assert await sent(store.has("s")) == 1
        assert await sent(store.list()) == 1
        assert await sent(store.delete("s")) == 1
        assert await sent(stale.save("t", snapshot(tick=2)), stale_log) == 2  # HEAD + PUT
        assert await sent(stale.save("t", snapshot(tick=3)), stale_log) == 2

    async def test_list_pages_of_1000(self, counted_store: Any) -> None:
        store, log = await counted_store()
        sem = asyncio.Semaphore(32)

        async def save(i: int) -> None:
            async with sem:
                await store.save(f"id-{i:05d}", {"tick": i})

        await asyncio.gather(*(save(i) for i in range(2500)))
        before = len(log())
        assert len(await store.list()) == 2500
        assert len(log()) - before == 3


class StoreContract(
    BasicContract,
    IdContract,
    EncodingContract,
    CompressionContract,
    ConditionalContract,
    StaleContract,
    ListContract,
    TtlContract,
):
    """Everything a store must do; subclass it and provide ``make_store``."""

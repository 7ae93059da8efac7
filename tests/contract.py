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
import contextlib
import dataclasses
import decimal
import enum
import gc
import inspect
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sessionstore
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
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
    SyncSessionStore,
)
from sessionstore.clients import ClientStore
from sessionstore.codec import Codec
from sessionstore.keys import make_key
from sessionstore.provider import (
    ABSENT,
    META_TICK,
    META_WRITE_ID,
    UNCONDITIONAL,
    AccessDenied,
    Condition,
    NotFound,
    PreconditionFailed,
    Primitives,
    Transient,
)
from sessionstore.retry import RetryPolicy
from sessionstore.testing import Emulator

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
#: Readable test ids: pytest escapes backslashes and non-ASCII characters in generated
#: ids, and mutmut cannot hand such ids back to pytest (a usage error it counts as a kill).
INVALID_IDS = [
    pytest.param("", id="empty"),
    pytest.param(None, id="None"),
    pytest.param(42, id="int"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param("\udc00lone-surrogate", id="lone-surrogate"),
    pytest.param("x" * 2000, id="2000-chars"),
]


class _Colour(enum.Enum):
    RED = (1, 2)


@dataclasses.dataclass
class _Point:
    x: int = 1


def _self_containing() -> dict[str, Any]:
    snap: dict[str, Any] = {"timeline": [{"kind": "message"}]}
    snap["timeline"][0]["parent"] = snap
    return snap


def _nested(depth: int) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for _ in range(depth):
        snap = {"d": snap}
    return snap


#: Values the library itself refuses, whatever orjson would make of them on its own
#: (orjson writes datetimes, UUIDs, enums and dataclasses, and NaN as null).
#: (str, int and float subclasses, str enums among them, are plain JSON: see below.)
UNENCODABLE = [
    pytest.param({"x": math.nan}, id="nan"),
    pytest.param({"x": math.nan, "y": 1}, id="nan-before-another-key"),
    pytest.param({"y": 1, "x": -math.inf}, id="inf-after-another-key"),
    pytest.param({"x": [1, math.inf]}, id="inf-in-list"),
    pytest.param({"x": {1, 2}}, id="set"),
    pytest.param({"x": b"bytes"}, id="bytes"),
    pytest.param({1: "int key"}, id="int-key"),
    pytest.param({"x": object()}, id="object"),
    pytest.param({"x": datetime(2024, 1, 1, tzinfo=UTC)}, id="datetime"),
    pytest.param({"x": uuid.UUID(int=1)}, id="uuid"),
    pytest.param({"x": decimal.Decimal("1.5")}, id="decimal"),
    pytest.param({"x": _Colour.RED}, id="enum-of-tuple"),
    pytest.param({"x": _Point()}, id="dataclass"),
    pytest.param({"x": "\udc00"}, id="lone-surrogate-value"),
    pytest.param(["not", "an", "object"], id="list"),
    pytest.param("a string", id="str"),
    pytest.param(_self_containing(), id="self-containing"),
    pytest.param(_nested(300), id="nested-300-deep"),
    pytest.param({"x": OrderedDict(y=[math.nan])}, id="nan-in-ordered-dict"),
]


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
        condition=UNCONDITIONAL,
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

    async def test_reuse_after_aclose(self, store: ObjectSessionStore) -> None:
        await store.save("s", snapshot(tick=1))
        await store.aclose()
        await store.aclose()  # a second close is harmless
        assert await store.load("s") == snapshot(tick=1)  # reopened on first use
        await store.save("s", snapshot(tick=2))
        async with store:
            loaded = await store.load("s")
            assert loaded is not None and loaded["tick"] == 2
        assert await store.has("s")


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

    @pytest.mark.parametrize("bad", INVALID_IDS)
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
            HealthCheck.too_slow,
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

    @pytest.mark.parametrize("bad", UNENCODABLE)
    async def test_unencodable_snapshot_writes_nothing(
        self, store: ObjectSessionStore, bad: Any
    ) -> None:
        await store.save("keep", snapshot(tick=7))
        with pytest.raises(SnapshotEncodeError):
            await store.save("keep", bad)
        with pytest.raises(SnapshotEncodeError):
            await store.save("new", bad)
        with pytest.raises(SnapshotEncodeError):
            await store.save("new", bad, if_absent=True)
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
            pytest.param(b"not json", id="not-json"),
            pytest.param(b'{"truncated": ', id="truncated-json"),
            pytest.param(b"[1, 2]", id="json-list"),
            pytest.param(b"\x1f\x8b\x08garbage", id="gzip-garbage"),
            pytest.param(b"\x28\xb5\x2f\xfdzz", id="zstd-garbage"),
            pytest.param(b"", id="empty"),
        ],
    )
    async def test_corrupt_object_raises_decode_error(
        self, store: ObjectSessionStore, body: bytes
    ) -> None:
        await put_raw(store, make_key(store.prefix, "bad"), body)
        with pytest.raises(SnapshotDecodeError) as info:
            await store.load("bad")
        assert "bad.json" in str(info.value)

    @pytest.mark.parametrize("compression", [None, "gzip", "zstd"], ids=["plain", "gzip", "zstd"])
    async def test_big_integers_round_trip_exactly(
        self, make_store: MakeStore, compression: Any
    ) -> None:
        """Integers beyond 64 bits: saved and loaded exact, and read exact when another
        writer (Python's json) stored them."""
        store = make_store(compression=compression, compress_min_bytes=0)
        snap = snapshot(account_id=123456789012345678901234567890, low=-(2**63) - 1, f=1e19)
        await store.save("s", snap)
        loaded = await store.load("s")
        assert loaded == snap and repr(loaded) == repr(snap)
        body = json.dumps(snap).encode()
        await put_raw(store, make_key(store.prefix, "theirs"), body)
        theirs = await store.load("theirs")
        assert theirs == snap and repr(theirs) == repr(snap)

    async def test_max_snapshot_bytes_on_save_and_load(self, make_store: MakeStore) -> None:
        small = make_store(max_snapshot_bytes=2000)
        with pytest.raises(SnapshotTooLargeError):
            await small.save("s", snapshot(pad="x" * 3000))
        assert await small.load("s") is None
        await make_store().save("s", snapshot(pad="x" * 3000))
        with pytest.raises(SnapshotTooLargeError):
            await small.load("s")
        assert await small.has("s")  # has answers existence; only a load enforces the size

    @pytest.mark.parametrize("compression", [None, "gzip", "zstd"], ids=["plain", "gzip", "zstd"])
    async def test_max_snapshot_bytes_boundary(
        self, make_store: MakeStore, compression: Any
    ) -> None:
        """Exactly max_snapshot_bytes of JSON is stored and loaded; one byte more is not."""
        snap = snapshot(pad="x" * 3000)
        size = len(Codec().encode(snap).body)
        options: dict[str, Any] = {"compression": compression, "compress_min_bytes": 0}
        exact = make_store(max_snapshot_bytes=size, **options)
        short = make_store(max_snapshot_bytes=size - 1, **options)
        await exact.save("s", snap)
        assert await exact.load("s") == snap
        with pytest.raises(SnapshotTooLargeError, match=f"max_snapshot_bytes={size - 1}"):
            await short.save("t", snap)
        assert await exact.load("t") is None
        with pytest.raises(SnapshotTooLargeError, match=f"max_snapshot_bytes={size - 1}"):
            await short.load("s")
        with pytest.raises(SnapshotTooLargeError) as info:
            await make_store(max_snapshot_bytes=size - 1).load("s")
        where = f"{exact.location}/{make_key(exact.prefix, 's')}"
        expected = (
            f"{where} is {size} bytes, over max_snapshot_bytes={size - 1}"
            if compression is None
            else f"{where} decompresses to more than max_snapshot_bytes={size - 1}"
        )
        assert str(info.value) == expected

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

    async def test_conflict_names_the_key_and_the_reason(self, store: ObjectSessionStore) -> None:
        where = f"{store.location}/{make_key(store.prefix, 's')}"
        v1 = await store.save("s", snapshot(tick=1))
        with pytest.raises(ConflictError) as info:
            await store.save("s", snapshot(tick=2), if_absent=True)
        assert type(info.value) is ConflictError
        assert str(info.value) == f"{store.provider} save {where}: it already exists"
        v2 = await store.save("s", snapshot(tick=2), if_version=v1)
        with pytest.raises(ConflictError) as info:
            await store.save("s", snapshot(tick=3), if_version=v1)
        assert type(info.value) is ConflictError
        assert str(info.value) == f"{store.provider} save {where}: it is not at version {v1}"
        with pytest.raises(ConflictError, match="it is not at version"):
            await store.save("missing", snapshot(), if_version=v2)
        with pytest.raises(StoreConfigError, match="not both"):
            await store.save("s", snapshot(tick=4), if_version=v2, if_absent=True)
        loaded = await store.load_versioned("s")
        assert loaded is not None and loaded.version == v2 and loaded.snapshot["tick"] == 2

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
            with pytest.raises(ConflictError) as info:
                await store.delete("s", if_version=v1)
            where = f"{store.location}/{make_key(store.prefix, 's')}"
            assert str(info.value) == f"{store.provider} delete {where}: it is not at version {v1}"
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
        store = make_store(reject_stale=True)
        for bad in ({"tick": "3"}, {"tick": 3.0}, {"tick": True}, {"no": "tick"}):
            with pytest.raises(SnapshotEncodeError, match="integer 'tick'"):
                await store.save("s", bad)
        assert await store.load("s") is None

    async def test_stale_guard_reads_past_unusable_metadata(self, make_store: MakeStore) -> None:
        """A tick that is not an int, in metadata or body, is read whole or ignored."""
        store = make_store(reject_stale=True)
        await store._ensure_open()
        key = make_key(store.prefix, "s")
        await store._put(
            key,
            Codec().encode(snapshot(tick=9)).body,
            content_type="application/json",
            metadata={META_TICK: "not-a-number"},
            condition=UNCONDITIONAL,
        )
        with pytest.raises(StaleSnapshotError, match="stored tick 9"):
            await store.save("s", snapshot(tick=8))  # found in the body
        await put_raw(store, key, b'{"tick": "9"}')  # another client's idea of a tick
        await store.save("s", snapshot(tick=1))  # nothing to compare with: written
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 1

    async def test_with_if_version_and_if_absent(self, make_store: MakeStore) -> None:
        store = make_store(reject_stale=True)
        v5 = await store.save("s", snapshot(tick=5), if_absent=True)
        with pytest.raises(StaleSnapshotError):  # older tick: stale before the condition
            await store.save("s", snapshot(tick=1), if_absent=True)
        with pytest.raises(ConflictError) as info:  # newer tick, but the session exists
            await store.save("s", snapshot(tick=9), if_absent=True)
        assert not isinstance(info.value, StaleSnapshotError)
        with pytest.raises(StaleSnapshotError):
            await store.save("s", snapshot(tick=4), if_version=v5)
        v6 = await store.save("s", snapshot(tick=6), if_version=v5)
        with pytest.raises(ConflictError) as info:  # newer tick, but an old version
            await store.save("s", snapshot(tick=7), if_version=v5)
        assert not isinstance(info.value, StaleSnapshotError)
        got = await store.load_versioned("s")
        assert got is not None and got.version == v6 and got.snapshot["tick"] == 6

    @pytest.mark.parametrize(
        ("mine", "wins", "existing"),
        [(9, True, True), (7, False, True), (9, True, False), (7, False, False)],
        ids=["newer", "older", "newer-create", "older-create"],
    )
    async def test_another_writer_between_read_and_write(
        self, make_store: MakeStore, mine: int, wins: bool, existing: bool
    ) -> None:
        """The compare-and-swap loop looks again when another writer lands in between
        (also when the session did not exist yet: the create is conditional too)."""
        store, other = make_store(reject_stale=True), make_store(reject_stale=True)
        if existing:
            await store.save("s", snapshot(tick=1))
        put, puts = store._put, 0

        async def another_write_first(key: str, body: bytes, **kw: Any) -> str:
            nonlocal puts
            puts += 1
            if puts == 1:
                await other.save("s", snapshot(tick=8))  # lands between our read and write
            return await put(key, body, **kw)

        store._put = another_write_first  # type: ignore[method-assign]
        if wins:
            await store.save("s", snapshot(tick=mine))
        else:
            with pytest.raises(StaleSnapshotError, match="stored tick 8"):
                await store.save("s", snapshot(tick=mine))
        assert puts == (2 if wins else 1)
        loaded = await other.load("s")
        assert loaded is not None and loaded["tick"] == (mine if wins else 8)

    async def test_endless_writers_end_in_a_conflict(self, make_store: MakeStore) -> None:
        store, other = make_store(reject_stale=True), make_store(reject_stale=True)
        await store.save("s", snapshot(tick=1))
        put, puts = store._put, 0

        async def another_write_first(key: str, body: bytes, **kw: Any) -> str:
            nonlocal puts
            puts += 1
            await other.save("s", snapshot(tick=1, n=puts))  # before every write of ours
            return await put(key, body, **kw)

        store._put = another_write_first  # type: ignore[method-assign]
        with pytest.raises(ConflictError) as info:
            await store.save("s", snapshot(tick=2))
        assert type(info.value) is ConflictError
        where = f"{store.location}/{make_key(store.prefix, 's')}"
        assert str(info.value) == (
            f"{store.provider} save {where}: too many concurrent writers (reject_stale loop)"
        )
        assert puts == 64


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

    async def test_iter_info_sizes_times_and_versions(self, store: ObjectSessionStore) -> None:
        before = datetime.now(UTC) - timedelta(hours=1)  # generous: emulator clocks
        snaps = {"a": snapshot("a"), "b": snapshot("b", pad="x" * 100)}
        versions = {sid: await store.save(sid, snap) for sid, snap in snaps.items()}
        infos = [info async for info in store.iter_info(page_size=1)]
        assert [info.session_id for info in infos] == ["a", "b"]
        for info in infos:
            assert info.size == len(Codec().encode(snaps[info.session_id]).body)
            assert info.last_modified is not None
            assert before < info.last_modified < datetime.now(UTC) + timedelta(hours=1)
            assert info.version == versions[info.session_id]

    async def test_page_size_is_checked(self, store: ObjectSessionStore) -> None:
        await store.save("s", snapshot())
        for bad in (0, 1001, 2.0, None):
            with pytest.raises(StoreConfigError, match="page_size must be an int in 1..1000"):
                [i async for i in store.iter_ids(page_size=bad)]
        for good in (1, 1000):
            assert [i async for i in store.iter_ids(page_size=good)] == ["s"]

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
        await store._delete(store.prefix + "nested/deeper.json", condition=UNCONDITIONAL)


class TtlContract:
    """A session not saved within ttl is expired: invisible, then purged."""

    def async_store_of(self, store: ObjectSessionStore) -> ObjectSessionStore:
        """The async store behind what ``make_store`` made (itself, unless wrapped)."""
        return store

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

    async def test_purge_keeps_sessions_younger_than_the_ttl(self, make_store: MakeStore) -> None:
        store = make_store()
        await store.save("a", snapshot())
        await store.save("b", snapshot())
        listed = {info.session_id: info async for info in store.iter_info()}
        newest = max(info.last_modified for info in listed.values())  # type: ignore[type-var]
        assert newest is not None
        later = make_store(ttl=timedelta(hours=1))
        later._now = lambda: newest + timedelta(hours=1)  # type: ignore[method-assign]
        # "b" (or both, if saved within one tick of the clock) is exactly one hour old.
        young = sorted(sid for sid, info in listed.items() if info.last_modified == newest)
        assert await later.purge_expired() == 2 - len(young)
        assert await store.list() == young
        assert await later.purge_expired(timedelta(hours=2)) == 0  # the argument wins
        assert await store.list() == young
        with pytest.raises(StoreConfigError, match="needs a ttl"):
            await store.purge_expired()

    async def test_purge_spares_a_session_saved_again_meanwhile(
        self, make_store: MakeStore
    ) -> None:
        if getattr(self, "conditional_deletes", "enforced") != "enforced":
            return  # the emulator cannot make the delete conditional (its own test says so)
        store = make_store()
        await store.save("again", snapshot(tick=1))  # listed (and purged) first
        await store.save("gone", snapshot(tick=1))
        later = make_store(ttl=timedelta(hours=1))
        inner = self.async_store_of(later)  # where purge_expired calls delete
        real_now = inner._now
        inner._now = lambda: real_now() + timedelta(hours=2)  # type: ignore[method-assign]
        delete = inner.delete

        async def resave_then_delete(session_id: str, **kw: Any) -> None:
            if session_id == "again":
                await store.save("again", snapshot(tick=2))  # saved again after the listing
            await delete(session_id, **kw)

        inner.delete = resave_then_delete  # type: ignore[method-assign]
        assert await later.purge_expired() == 1  # the purge goes on after the spared one
        loaded = await store.load("again")
        assert loaded is not None and loaded["tick"] == 2
        assert await store.list() == ["again"]


#: Hooks a store's SDK client; the returned ``log()`` lists the requests sent since.
CountRequests = Callable[[ObjectSessionStore], Awaitable[Callable[[], list[str]]]]


class ExpiryContract:
    """Expired means absent for every operation, writes included."""

    @staticmethod
    def later(make_store: MakeStore, **options: Any) -> ObjectSessionStore:
        """A store whose clock runs two hours ahead, with a one-hour ttl."""
        store = make_store(ttl=timedelta(hours=1), **options)
        real_now = store._now
        store._now = lambda: real_now() + timedelta(hours=2)  # type: ignore[method-assign]
        return store

    async def test_if_absent_replaces_an_expired_session(self, make_store: MakeStore) -> None:
        store = make_store(ttl=timedelta(hours=1))
        await store.save("s", snapshot(tick=9))
        later = self.later(make_store)
        assert await later.has("s") is False
        version = await later.save("s", snapshot(tick=1), if_absent=True)
        versioned = await store.load_versioned("s")
        assert versioned is not None and versioned.snapshot["tick"] == 1
        assert versioned.version == version
        with pytest.raises(ConflictError):  # a live session still blocks
            await store.save("s", snapshot(tick=2), if_absent=True)

    async def test_a_writer_refreshing_an_expired_session_wins(self, make_store: MakeStore) -> None:
        store = make_store(ttl=timedelta(hours=1))
        await store.save("s", snapshot(tick=1))
        later = self.later(make_store)
        real_put = later._put

        async def refreshed_first(key: str, body: bytes, **options: Any) -> str:
            if options["condition"].version is not None:  # the replacement of the expired one
                await store.save("s", snapshot(tick=5))  # another writer refreshes it first
            return await real_put(key, body, **options)

        later._put = refreshed_first  # type: ignore[method-assign]
        with pytest.raises(ConflictError) as info:
            await later.save("s", snapshot(tick=2), if_absent=True)
        where = f"{store.location}/{make_key(store.prefix, 's')}"
        assert str(info.value) == f"{store.provider} save {where}: it already exists"
        loaded = await store.load("s")
        assert loaded is not None and loaded["tick"] == 5

    async def test_an_expired_tick_does_not_count(self, make_store: MakeStore) -> None:
        await make_store(reject_stale=True).save("s", snapshot(tick=9))
        await make_store().save("plain", snapshot(tick=9))  # no tick metadata: read whole
        later = self.later(make_store, reject_stale=True)
        for session_id in ("s", "plain"):
            await later.save(session_id, snapshot(tick=3))
            loaded = await make_store().load(session_id)
            assert loaded is not None and loaded["tick"] == 3
        await make_store().save("t", snapshot(tick=9))
        await later.save("t", snapshot(tick=3), if_absent=True)
        with pytest.raises(StaleSnapshotError):  # a live tick still counts
            await make_store(reject_stale=True).save("s", snapshot(tick=2))

    @pytest.mark.parametrize("bad", [timedelta(0), timedelta(seconds=-1), 3600, "1h"], ids=repr)
    async def test_purge_expired_needs_a_positive_timedelta(
        self, make_store: MakeStore, bad: Any
    ) -> None:
        store = make_store(ttl=timedelta(hours=1))
        await store.save("s", snapshot())
        with pytest.raises(StoreConfigError) as info:
            await self.later(make_store).purge_expired(bad)
        assert str(info.value) == (
            f"purge_expired() ttl must be a positive timedelta or None, not {bad!r}"
        )
        assert await store.list() == ["s"]


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


#: The issue's serverless snippet: a module-level async store, asyncio.run per invocation.
ASYNC_HANDLER = """
import asyncio, sys
from sessionstore import open_store

store = open_store(sys.argv[1])

async def work(i):
    await store.save(f"s{i % 5}", {"tick": i})
    assert (await store.load(f"s{i % 5}")) == {"tick": i}

def handler(event, context):
    asyncio.run(work(event["i"]))

for i in range(100):
    handler({"i": i}, None)
print(len(asyncio.run(store.list())))
"""


#: A store used through the async API, then forked (multiprocessing's 'fork' context):
#: the child uses both APIs, also under a deadline. A hung child fails, never hangs.
FORK_AFTER_ASYNC_USE = """
import asyncio, multiprocessing, sys
import sessionstore
from sessionstore import SyncSessionStore, open_store

store = open_store(sys.argv[1])
asyncio.run(store.save("parent", {"tick": 1}))  # its clients and pools are open at the fork

def child(results):
    async def both():
        await store.save("child-async", {"tick": 2})
        return [await store.load("parent"), await store.load("child-async")]

    got = asyncio.run(both())
    with sessionstore.deadline(5):
        got += asyncio.run(both())
    sync = SyncSessionStore(store)
    sync.save("child-sync", {"tick": 3})
    got.append(sync.load("child-sync"))
    with sessionstore.deadline(5):
        sync.save("child-sync", {"tick": 4})
        got.append(sync.load("child-sync"))
    results.put(got)

fork = multiprocessing.get_context("fork")
results = fork.Queue()
worker = fork.Process(target=child, args=(results,))
worker.start()
worker.join(60)
if worker.is_alive():
    worker.kill()
    worker.join()
    print("the forked child hung")
else:
    print(results.get(timeout=5) if worker.exitcode == 0 else "the forked child failed")
print(worker.exitcode, asyncio.run(store.load("parent")))
"""


#: Stores used in a running loop and dropped unclosed: in its middle and at its end.
DROPPED_IN_A_RUNNING_LOOP = """
import asyncio, gc, sys
from sessionstore import open_store

async def use_and_drop(i):
    store = open_store(sys.argv[1])
    await store.save(f"dropped-{i}", {"tick": i})
    return await store.has(f"dropped-{i}")

async def main():
    seen = [await use_and_drop(0)]
    gc.collect()
    await asyncio.sleep(0.2)  # the loop goes on
    seen.append(await use_and_drop(1))
    seen.append(await use_and_drop(2))
    gc.collect()
    print(seen)

asyncio.run(main())
gc.collect()
"""


def count_clients(store: ObjectSessionStore) -> tuple[list[int], list[int]]:
    """Record each client ``store`` opens, and each one closed, from now on."""
    opened: list[int] = []
    closed: list[int] = []
    real = store._open

    async def counting(stack: contextlib.AsyncExitStack) -> Any:
        client = await real(stack)
        opened.append(len(opened))
        stack.callback(closed.append, opened[-1])
        return client

    store._open = counting  # type: ignore[method-assign]
    return opened, closed


async def increment(store: ObjectSessionStore, session_id: str) -> None:
    """Add one to ``{"n": ...}`` at ``session_id`` by compare-and-swap."""
    while True:
        current = await store.load_versioned(session_id)
        try:
            if current is None:
                await store.save(session_id, {"n": 1}, if_absent=True)
            else:
                n = current.snapshot["n"] + 1
                await store.save(session_id, {"n": n}, if_version=current.version)
        except ConflictError:
            continue
        return


class LoopContract:
    """A store built outside any loop follows its caller's event loop (serverless).

    Needs a ``store_url`` fixture as :class:`SyncStoreContract` does.
    """

    def test_asyncio_run_per_invocation_in_a_fresh_process(
        self, store_url: tuple[str, dict[str, str]]
    ) -> None:
        url, env = store_url
        out, err = run_python(ASYNC_HANDLER, url, env=env)
        assert (out, err) == ("5\n", "")

    def test_a_forked_child_renews_what_the_parent_opened(
        self, store_url: tuple[str, dict[str, str]]
    ) -> None:
        # The parent's thread pools come without their threads, its clients' connections
        # are shared: the child must open its own, both APIs, within its deadline.
        url, env = store_url
        out, err = run_python(FORK_AFTER_ASYNC_USE, url, env=env)
        one, two, three, four = ({"tick": n} for n in (1, 2, 3, 4))
        assert (out, err) == (f"{[one, two, one, two, three, four]}\n0 {one}\n", "")

    def test_successive_event_loops(self, store: ObjectSessionStore) -> None:
        async def invocation(i: int) -> Any:
            await store.save("s", snapshot(tick=i))
            return (await store.load("s"), await store.has("s"))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(20):
                assert asyncio.run(invocation(i)) == (snapshot(tick=i), True)
            gc.collect()
        leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert not leaks, [str(w.message) for w in leaks]

    def test_several_running_loops_share_one_store(self, store: ObjectSessionStore) -> None:
        # Worker threads each running a loop of their own (a threaded server, a sync
        # handler beside async code): their first calls at one moment, then all at once;
        # each live loop gets its own client (a shared one if it follows no loop), and
        # every client opened is closed: at its loop's shutdown or by aclose().
        workers = 4
        barrier = threading.Barrier(workers + 1)
        opened, closed = count_clients(store)
        clients: dict[int, Any] = {}

        async def work(i: int) -> Any:
            await asyncio.to_thread(barrier.wait, 120)  # every loop's first call at once
            await store.save(f"w{i}", snapshot(tick=i))
            clients[i] = store._affinity.client()
            await asyncio.to_thread(barrier.wait, 120)  # all loops run, with their clients
            await asyncio.to_thread(barrier.wait, 120)  # aclose() ran from another loop
            for _ in range(5):
                await increment(store, "shared")
            return await store.load(f"w{i}")

        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(asyncio.run, work(i)) for i in range(workers)]
            barrier.wait(120)
            barrier.wait(120)
            live = len(store._affinity.loops())
            asyncio.run(store.aclose())  # closes each loop's client, on its own loop
            left = store._affinity.loops()
            barrier.wait(120)
            results = [future.result(120) for future in futures]
        assert results == [snapshot(tick=i) for i in range(workers)]
        assert asyncio.run(store.load("shared")) == {"n": 5 * workers}
        assert (live, left) == (workers, [])
        distinct = len({id(client) for client in clients.values()})
        follows = store.capabilities.client_follows_loop
        assert distinct == (workers if follows else 1)
        if follows:  # closed at each loop's shutdown: nothing leaked
            assert sorted(closed) == sorted(opened) and len(opened) == 2 * workers + 1
        asyncio.run(store.aclose())
        assert sorted(closed) == sorted(opened)

    def test_a_store_dropped_unclosed_in_a_running_loop_prints_nothing(
        self, store_url: tuple[str, dict[str, str]]
    ) -> None:
        url, env = store_url
        out, err = run_python(DROPPED_IN_A_RUNNING_LOOP, url, env=env)
        assert (out, err) == ("[True, True, True]\n", "")

    def test_aclose_after_the_building_loop_closed(self, store: ObjectSessionStore) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(store.save("s", snapshot()))
        finally:
            loop.close()  # by hand, without closing its async generators
        asyncio.run(store.aclose())
        assert asyncio.run(store.load("s")) == snapshot()
        asyncio.run(store.aclose())


JSON = "application/json"


class ProviderRulesContract:
    """Each rule of the provider interface (docs/DESIGN.md, "Provider rules"), checked
    on the primitives directly, one test named after each rule."""

    make_store: MakeStore

    async def _opened(self, make_store: MakeStore) -> ObjectSessionStore:
        store = make_store()
        await store._ensure_open()
        return store

    async def test_rule_missing_objects_raise_not_found(self, make_store: MakeStore) -> None:
        store = await self._opened(make_store)
        key = make_key(store.prefix, "never-written")
        for call in (lambda: store._get(key), lambda: store._head(key)):
            with pytest.raises(NotFound):
                await store._translated(call())
        with contextlib.suppress(NotFound):  # or succeeds: S3 answers a DELETE with 204
            await store._translated(store._delete(key, condition=UNCONDITIONAL))

    async def test_rule_conditions_are_real(self, make_store: MakeStore) -> None:
        store = await self._opened(make_store)
        key = make_key(store.prefix, "c")
        put = store._put
        first = await put(key, b"{}", content_type=JSON, metadata={}, condition=ABSENT)
        refused = [
            lambda: put(key, b"{1}", content_type=JSON, metadata={}, condition=ABSENT),
            lambda: put(key, b"{2}", content_type=JSON, metadata={}, condition=Condition("x")),
        ]
        if getattr(self, "conditional_deletes", "enforced") == "enforced":  # the emulator's
            refused.append(lambda: store._delete(key, condition=Condition(version="x")))
        for call in refused:
            with pytest.raises((PreconditionFailed, NotFound)):
                await store._translated(call())
        assert (await store._get(key)).body == b"{}"
        second = await put(key, b"[]", content_type=JSON, metadata={}, condition=Condition(first))
        assert second != first
        await store._delete(key, condition=UNCONDITIONAL)
        with pytest.raises(NotFound):
            await store._translated(store._head(key))

    async def test_rule_versions_never_repeat_for_other_content(
        self, make_store: MakeStore
    ) -> None:
        store = await self._opened(make_store)
        key = make_key(store.prefix, "v")
        seen: set[str] = set()
        for body in (b"[1]", b"[2]", b"[3]"):
            version = await store._put(
                key, body, content_type=JSON, metadata={}, condition=UNCONDITIONAL
            )
            assert version not in seen
            seen.add(version)
            assert (await store._head(key)).version == version
            await store._delete(key, condition=UNCONDITIONAL)  # and re-created next turn
        stale = Condition(version=min(seen))
        with pytest.raises((PreconditionFailed, NotFound)):
            await store._translated(
                store._put(key, b"[4]", content_type=JSON, metadata={}, condition=stale)
            )

    async def test_rule_metadata_round_trips(self, make_store: MakeStore) -> None:
        store = await self._opened(make_store)
        key = make_key(store.prefix, "m")
        written = {META_WRITE_ID: uuid.uuid4().hex, META_TICK: "7"}
        await store._put(key, b"{}", content_type=JSON, metadata=written, condition=UNCONDITIONAL)
        head = dict((await store._head(key)).metadata)
        got = dict((await store._get(key)).info.metadata)
        assert head in (written, {}), "metadata comes back as written, or a store keeps none"
        assert got == head

    async def test_rule_listing_holds_direct_children_only(self, make_store: MakeStore) -> None:
        store = await self._opened(make_store)
        keys = [make_key(store.prefix, name) for name in ("a", "b", "c")]
        deeper = f"{store.prefix}deeper/{make_key('', 'd')}"
        for key in [*keys, deeper]:
            await store._put(key, b"{}", content_type=JSON, metadata={}, condition=UNCONDITIONAL)
        first = await store._list_page(store.prefix, page_size=2, token=None)
        assert [obj.key for obj in first.objects] == keys[:2] and first.next_token
        rest = await store._list_page(store.prefix, page_size=2, token=first.next_token)
        assert [obj.key for obj in rest.objects] == keys[2:] and rest.next_token is None
        await store._delete(deeper, condition=UNCONDITIONAL)

    def test_rule_sync_client_is_declared(self, make_store: MakeStore) -> None:
        store = make_store()
        declared = store.capabilities.sync_client
        assert store._serves_sync() is declared
        assert _implements_sync_client(type(store)) is declared, (
            "a store implements the sync-client hook exactly when it declares sync_client"
        )
        if declared:  # it builds and closes a sync client, blocking
            store._open_sync()
            store._close_sync()


def _implements_sync_client(cls: type[ObjectSessionStore]) -> bool:
    """Whether ``cls`` overrides the hook that builds a synchronous client:
    ``_build_sync_client`` for a :class:`ClientStore`, ``_open_sync`` for the others."""
    if issubclass(cls, ClientStore):
        return cls._build_sync_client is not ClientStore._build_sync_client
    return cls._open_sync is not Primitives._open_sync


class PurgePrefixContract:
    """``purge_prefix`` deletes every object directly under the prefix, and only those."""

    @staticmethod
    def small_pages(store: ObjectSessionStore) -> list[int]:
        """Make the store's listing answer pages of at most 2 objects (a purge asks for
        1000), so a few objects take several pages; returns the page sizes asked for."""
        asked: list[int] = []
        list_page = store._list_page

        async def paged(prefix: str, *, page_size: int, token: str | None) -> Any:
            asked.append(page_size)
            return await list_page(prefix, page_size=2, token=token)

        store._list_page = paged  # type: ignore[method-assign]
        return asked

    async def test_purge_prefix_deletes_every_direct_child(self, make_store: MakeStore) -> None:
        writer = make_store()
        for session_id in ("a", "b", "c"):
            await writer.save(session_id, snapshot(session_id))
        # Not session keys (the file store lists only names ending in .json). None starts
        # a page of 2: LocalStack 4.13 skips a key with a "%" that a continuation token
        # names (the next page starts after it), a bug of its own.
        foreign = [writer.prefix + name for name in ("b%zz.json", "c%2fhex.json")]
        for key in foreign:
            await put_raw(writer, key, b"{}")
        nested = f"{writer.prefix}deeper/{make_key('', 'd')}"  # not directly under it
        await put_raw(writer, nested, b"{}")
        # Outside the prefix (a store without one has no outside).
        outside = writer.prefix[:-1] + f"-{uuid.uuid4().hex}.json" if writer.prefix else None
        if outside is not None:
            await put_raw(writer, outside, b"{}")
        try:
            # Expired sessions count too: invisible to list(), purged all the same.
            purger = make_store(ttl=timedelta(hours=1))
            real_now = purger._now
            purger._now = lambda: real_now() + timedelta(hours=2)  # type: ignore[method-assign]
            asked = self.small_pages(purger)
            assert await purger.purge_prefix() == 5
            assert asked and set(asked) == {1000}
            assert len(asked) == 3  # pages of 2, 2 and 1 (deletes between pages)
            assert await writer.list() == []
            for key in [*foreign, *(make_key(writer.prefix, s) for s in "abc")]:
                with pytest.raises(NotFound):
                    await writer._translated(writer._head(key))
            for key in [nested, outside]:
                if key is not None:
                    assert await writer._head_once(key) is not None, key
            assert await purger.purge_prefix() == 0
        finally:
            for key in [nested, outside]:
                if key is not None:
                    with contextlib.suppress(NotFound):
                        await writer._translated(writer._delete(key, condition=UNCONDITIONAL))

    async def test_purge_prefix_of_an_empty_prefix(self, make_store: MakeStore) -> None:
        store = make_store()
        assert await store.purge_prefix() == 0
        assert await store.purge_prefix(concurrency=1) == 0

    async def test_purge_prefix_checks_concurrency_first(self, make_store: MakeStore) -> None:
        store = make_store()
        await store.save("kept", snapshot())
        for bad in (1.5, 0, -1, "2", None, 2.0):
            with pytest.raises(StoreConfigError, match="concurrency must be a positive int"):
                await asyncio.wait_for(store.purge_prefix(concurrency=bad), 10)  # type: ignore[arg-type]
            assert await store.list() == ["kept"]
        assert await store.purge_prefix(concurrency=1) == 1
        assert await store.list() == []

    async def test_purge_prefix_an_object_gone_meanwhile_is_fine(
        self, make_store: MakeStore
    ) -> None:
        store = make_store()
        for session_id in ("a", "b", "c"):
            await store.save(session_id, snapshot(session_id))
        delete = store._delete
        raced: list[str] = []

        async def another_client_first(key: str, *, condition: Condition) -> None:
            if not raced:  # another client deletes the first object between list and delete
                raced.append(key)
                await delete(key, condition=UNCONDITIONAL)
            await delete(key, condition=condition)  # NotFound (or a 204, on S3)

        store._delete = another_client_first  # type: ignore[method-assign]
        assert await store.purge_prefix() == 3  # the objects listed
        assert raced and await store.list() == []

    async def test_purge_prefix_retries_and_raises_as_documented(
        self, make_store: MakeStore
    ) -> None:
        store = make_store(retry=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001))
        for session_id in ("a", "b"):
            await store.save(session_id, snapshot(session_id))
        delete = store._delete
        failures: dict[str, list[Exception]] = {make_key(store.prefix, "a"): [Transient("503")]}

        async def failing(key: str, *, condition: Condition) -> None:
            if failures.get(key):
                raise failures[key].pop()
            await delete(key, condition=condition)

        store._delete = failing  # type: ignore[method-assign]
        assert await store.purge_prefix() == 2  # the transient failure was retried
        assert await store.list() == []
        await store.save("a", snapshot("a"))
        failures[make_key(store.prefix, "a")] = [AccessDenied("403")]
        with pytest.raises(StoreAccessError, match="was refused"):
            await store.purge_prefix()
        failures[make_key(store.prefix, "a")] = [Transient("503")] * 3
        with pytest.raises(StoreUnavailableError, match="after 3 attempt"):
            await store.purge_prefix()
        assert await store.list() == ["a"]
        assert await store.purge_prefix() == 1


class StoreContract(
    BasicContract,
    IdContract,
    EncodingContract,
    CompressionContract,
    ConditionalContract,
    StaleContract,
    ListContract,
    TtlContract,
    ExpiryContract,
):
    """Everything a store must do, through either API; subclass it and provide
    ``make_store``."""


class AsyncStoreContract(StoreContract, LoopContract, ProviderRulesContract, PurgePrefixContract):
    """The contract of the async API: :class:`StoreContract` and :class:`LoopContract`."""


class ThroughSync:
    """An async face on a :class:`SyncSessionStore`, so the contract runs through it.

    Every public call goes through the sync API from a worker thread (several at once
    when a test gathers calls, as threads sharing one store would); the private
    primitives the suite uses run on the sync store's own loop, like its calls.
    """

    def __init__(self, sync: SyncSessionStore) -> None:
        object.__setattr__(self, "sync", sync)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.sync.store, name)
        if inspect.isasyncgenfunction(attr):
            raise AttributeError(f"ThroughSync needs its own {name}(): add it beside iter_ids")
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def on_its_loop(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(self.sync._run, attr(*args, **kwargs))

        return on_its_loop

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.sync.store, name, value)  # e.g. a test's clock

    async def save(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.sync.save, *args, **kwargs)

    async def load(self, session_id: str) -> Any:
        return await asyncio.to_thread(self.sync.load, session_id)

    async def load_versioned(self, session_id: str) -> Any:
        return await asyncio.to_thread(self.sync.load_versioned, session_id)

    async def has(self, session_id: str) -> bool:
        return await asyncio.to_thread(self.sync.has, session_id)

    async def delete(self, session_id: str, **kwargs: Any) -> None:
        await asyncio.to_thread(self.sync.delete, session_id, **kwargs)

    async def list(self) -> list[str]:
        return await asyncio.to_thread(self.sync.list)

    async def purge_expired(self, *args: Any) -> int:
        return await asyncio.to_thread(self.sync.purge_expired, *args)

    async def iter_ids(self, **kwargs: Any) -> AsyncIterator[str]:
        async for item in self._through(self.sync.iter_ids(**kwargs)):
            yield item

    async def iter_info(self, **kwargs: Any) -> AsyncIterator[Any]:
        async for item in self._through(self.sync.iter_info(**kwargs)):
            yield item

    @staticmethod
    async def _through(items: Iterator[Any]) -> AsyncIterator[Any]:
        done = object()
        while (item := await asyncio.to_thread(next, items, done)) is not done:
            yield item

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> ThroughSync:
        await asyncio.to_thread(self.sync.__enter__)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def cloud_url(provider: str, emulator: Emulator, prefix: str) -> tuple[str, dict[str, str]]:
    """An ``open_store`` URL of the emulator's bucket and ``prefix``, and the environment
    variables it needs (the credentials never go in a URL)."""
    if provider == "s3":
        url = f"s3://{emulator.bucket}/{prefix}?endpoint_url={emulator.endpoint}&region=us-east-1"
        keys = {"AWS_ACCESS_KEY_ID": "aws_access_key_id"}
        keys["AWS_SECRET_ACCESS_KEY"] = "aws_secret_access_key"
        return url, {name: emulator.options[option] for name, option in keys.items()}
    if provider == "gcs":
        url = f"gs://{emulator.bucket}/{prefix}?project=test"
        return url, {"STORAGE_EMULATOR_HOST": emulator.endpoint}
    if provider == "azure":
        connection = emulator.options["connection_string"]
        return f"az://{emulator.bucket}/{prefix}", {"AZURE_STORAGE_CONNECTION_STRING": connection}
    raise ValueError(f"cloud_url knows s3, gcs and azure, not {provider!r}")


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Run ``code`` in a fresh interpreter that shows every warning; (stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


#: A synchronous handler, the store at module level, 100 invocations, never closed.
SYNC_HANDLER = """
import sys
from sessionstore import ConflictError, open_store_sync

store = open_store_sync(sys.argv[1])

def handler(event, context):
    current = store.load_versioned("counter")
    tick = 0 if current is None else current.snapshot["tick"]
    if current is None:
        store.save("counter", {"tick": tick + 1}, if_absent=True)
    else:
        store.save("counter", {"tick": tick + 1}, if_version=current.version)

for i in range(100):
    handler({"i": i}, None)
print(store.load("counter")["tick"])
ASYNC_STACKS = ("aiobotocore", "aiohttp", "azure.storage.blob.aio")
print(",".join(name for name in ASYNC_STACKS if name in sys.modules))
"""


FORKED_WORKERS = """
import os, sys
from sessionstore import open_store_sync

store = open_store_sync(sys.argv[1])
store.save("warm", {"tick": 0})  # the client and its connections are open at the fork
pids = []
for worker in range(3):
    pid = os.fork()
    if pid == 0:  # a prefork server's worker: the module-level store came with the fork
        try:
            for i in range(40):
                store.save(f"w{worker}-{i}", {"worker": worker, "i": i})
                assert store.load(f"w{worker}-{i}") == {"worker": worker, "i": i}
        except BaseException as exc:
            print(f"worker {worker}: {exc!r}", file=sys.stderr)
            os._exit(1)
        os._exit(0)
    pids.append(pid)
for i in range(40):
    store.save(f"parent-{i}", {"i": i})
    assert store.load(f"parent-{i}") == {"i": i}
codes = [os.waitpid(pid, 0)[1] for pid in pids]
print(codes, len(store.list()))
"""


#: A sync iterator taken one item and kept in a module global until exit.
ITERATOR_KEPT_UNTIL_EXIT = """
import sys
from sessionstore import open_store_sync

store = open_store_sync(sys.argv[1])
for i in range(3):
    store.save(f"kept-{i}", {"tick": i})
KEPT = store.iter_ids(page_size=1)
print(next(KEPT))
"""


class SyncStoreContract(StoreContract):
    """The whole contract through :class:`SyncSessionStore`, plus what threads do.

    Subclass it and provide ``make_async_store`` (the store test file's factory) and
    ``store_url``: ``(url, environment)`` that ``open_store_sync`` in another process
    reaches the same backend and prefix with.
    """

    #: The async stacks a handler on the sync API loads anyway (its sync SDK's imports).
    async_stacks_loaded = ""

    def test_a_module_level_store_serves_100_invocations_and_exits_quietly(
        self, store_url: tuple[str, dict[str, str]]
    ) -> None:
        url, env = store_url
        out, err = run_python(SYNC_HANDLER, url, env=env)
        # ... and loads no async SDK: a sync handler's cold start is the sync SDK's.
        assert (out, err) == (f"100\n{self.async_stacks_loaded}\n", "")

    def test_forked_workers_get_clients_of_their_own(
        self, store_url: tuple[str, dict[str, str]], make_async_store: MakeStore
    ) -> None:
        # A prefork server (gunicorn, multiprocessing) forks after the module-level store
        # has opened its client: sharing its connections would mix up responses.
        url, env = store_url
        out, err = run_python(FORKED_WORKERS, url, env=env)
        shared = make_async_store().capabilities.shared_across_processes
        listed = 1 + 40 + (3 * 40 if shared else 0)
        assert (out, err) == (f"[0, 0, 0] {listed}\n", "")

    def test_an_iterator_kept_until_exit_prints_nothing(
        self, store_url: tuple[str, dict[str, str]]
    ) -> None:
        url, env = store_url
        out, err = run_python(ITERATOR_KEPT_UNTIL_EXIT, url, env=env)
        assert (out, err) == ("kept-0\n", "")

    def test_a_dropped_store_releases_its_loop_thread(self, make_async_store: MakeStore) -> None:
        # Used, never closed, dropped: what it started ends with it (the loop thread and
        # the loop's file descriptors), however many there were.
        runners, dropped = [], []
        declared = make_async_store().capabilities.sync_client
        for i in range(20):
            sync = SyncSessionStore(make_async_store())
            sync.save(f"dropped-{i}", snapshot(tick=i))
            assert sync.load(f"dropped-{i}") == snapshot(tick=i)
            runners.append(getattr(sync._runner, "loop_thread", None))
            dropped.append(weakref.ref(sync))
            del sync
        gc.collect()
        assert [ref() for ref in dropped] == [None] * 20
        for runner in runners:
            if runner is None:  # on the caller's thread: it started no thread
                assert declared
                continue
            runner.thread.join(30)
            assert not runner.thread.is_alive()
            assert runner._loop is not None and runner._loop.is_closed()

    def test_rule_sync_client_calls_run_on_the_callers_thread(
        self, make_sync: Callable[..., SyncSessionStore], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # What the store did, never a process-wide thread count (other tests' leftover
        # threads move it): the threads its primitives and its blocking SDK calls ran on,
        # and the threads started from the calling thread while the calls ran.
        store = make_sync()
        wrapped = store.store
        declared = wrapped.capabilities.sync_client
        assert store.on_callers_thread is declared
        me = threading.get_ident()
        seen: set[int] = set()  # where the primitives ran
        blocked: set[int] = set()  # where the blocking (sync SDK, file) calls ran
        started: list[threading.Thread] = []  # threads the calling thread started
        put, get, blocking = wrapped._put, wrapped._get, wrapped._blocking

        async def recording_put(*args: Any, **kwargs: Any) -> Any:
            seen.add(threading.get_ident())
            return await put(*args, **kwargs)

        async def recording_get(*args: Any, **kwargs: Any) -> Any:
            seen.add(threading.get_ident())
            return await get(*args, **kwargs)

        async def recording_blocking(fn: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
            def call(*args: Any, **kw: Any) -> Any:
                blocked.add(threading.get_ident())
                return fn(*args, **kw)

            return await blocking(call, *args, **kw)

        start = threading.Thread.start

        def recording_start(thread: threading.Thread) -> None:
            if threading.get_ident() == me:
                started.append(thread)
            start(thread)

        wrapped._put = recording_put  # type: ignore[method-assign]
        wrapped._get = recording_get  # type: ignore[method-assign]
        wrapped._blocking = recording_blocking  # type: ignore[method-assign]
        with monkeypatch.context() as patch:
            patch.setattr(threading.Thread, "start", recording_start)
            for i in range(5):  # the first call opens the store's clients
                store.save(f"s{i}", snapshot(tick=i))
                assert store.load(f"s{i}") == snapshot(tick=i)
        assert (seen == {me}) is declared
        if declared:
            assert blocked == {me}  # no thread hop for the SDK calls either...
            assert started == []  # ... and no pool or loop thread behind them
        else:
            assert me not in seen and len(seen) == 1  # the one loop thread serves them

    def test_an_interrupted_call_ends_there(
        self, make_sync: Callable[..., SyncSessionStore]
    ) -> None:
        # Ctrl-C (a signal handler raising) during a call ends the call: it must not
        # resume inside the thread's next call and write after all.
        store = make_sync()
        wrapped = store.store
        put = wrapped._put

        async def slow(*args: Any, **kwargs: Any) -> str:
            await asyncio.sleep(0.5)
            return await put(*args, **kwargs)

        calling = False

        def interrupt(*_: Any) -> None:
            if calling:
                raise KeyboardInterrupt

        wrapped._put = slow  # type: ignore[method-assign]
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            # Every 50 ms while the call runs: Python drops an exception a signal
            # handler raises inside a finalizer (__del__), so one signal may not land.
            signal.setitimer(signal.ITIMER_REAL, 0.1, 0.05)
            with pytest.raises(KeyboardInterrupt):
                calling = True
                try:
                    store.save("ghost", snapshot())
                finally:
                    calling = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        wrapped._put = put  # type: ignore[method-assign]
        time.sleep(0.6)
        store.save("other", snapshot())
        assert not store.has("ghost")

    async def test_a_sync_call_from_async_code_still_works(
        self, make_sync: Callable[..., SyncSessionStore]
    ) -> None:
        store = make_sync()
        # Blocking the running loop, as a boto3 call there would; but not failing.
        store.save("s", snapshot(tick=1))
        assert store.load("s") == snapshot(tick=1)

    def async_store_of(self, store: Any) -> ObjectSessionStore:
        """The wrapped async store: a test that swaps its methods swaps them there."""
        wrapped: ObjectSessionStore = store.sync.store
        return wrapped

    @pytest.fixture
    def make_store(self, make_async_store: MakeStore) -> Iterator[MakeStore]:
        made: list[SyncSessionStore] = []

        def make(**options: Any) -> Any:
            made.append(SyncSessionStore(make_async_store(**options)))
            return ThroughSync(made[-1])

        yield make
        for sync in made:
            sync.close()

    @pytest.fixture
    def make_sync(self, make_async_store: MakeStore) -> Iterator[Callable[..., SyncSessionStore]]:
        made: list[SyncSessionStore] = []

        def make(**options: Any) -> SyncSessionStore:
            made.append(SyncSessionStore(make_async_store(**options)))
            return made[-1]

        yield make
        for sync in made:
            sync.close()

    def test_the_async_api_works_beside_the_sync_api(
        self, make_sync: Callable[..., SyncSessionStore]
    ) -> None:
        # One store, its sync API in use (on a loop thread of its own, for stores
        # without a sync client) and its async API from the caller's loops, at once.
        sync = make_sync()
        sync.save("beside", snapshot(tick=0))

        async def async_side() -> Any:
            await sync.store.save("async", snapshot(tick=1))
            await asyncio.gather(
                asyncio.to_thread(lambda: [sync.save(f"s{i}", snapshot(tick=i)) for i in range(3)]),
                *(increment(sync.store, "counter") for _ in range(3)),
            )
            return await sync.store.load("beside")

        assert asyncio.run(async_side()) == snapshot(tick=0)
        assert asyncio.run(sync.store.load("async")) == snapshot(tick=1)
        assert sync.load("counter") == {"n": 3}
        assert sorted(sync.list()) == ["async", "beside", "counter", "s0", "s1", "s2"]

    def test_threads_share_one_store_for_cas_increments(
        self, make_sync: Callable[..., SyncSessionStore]
    ) -> None:
        store = make_sync()
        store.save("counter", snapshot(tick=0))
        threads, increments = 6, 10

        def worker() -> None:
            for _ in range(increments):
                while True:
                    current = store.load_versioned("counter")
                    assert current is not None
                    nxt = dict(current.snapshot, tick=current.snapshot["tick"] + 1)
                    try:
                        store.save("counter", nxt, if_version=current.version)
                        break
                    except ConflictError:
                        continue

        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(worker) for _ in range(threads)]:
                done.result()
        final = store.load("counter")
        assert final is not None and final["tick"] == threads * increments

    async def test_both_apis_share_one_format(
        self, make_sync: Callable[..., SyncSessionStore], make_async_store: MakeStore
    ) -> None:
        sync, other = make_sync(compression="gzip", compress_min_bytes=0), make_async_store()
        await asyncio.to_thread(sync.save, "from-sync", snapshot(tick=1))
        await other.save("from-async", snapshot(tick=2))
        assert await other.load("from-sync") == snapshot(tick=1)
        assert await asyncio.to_thread(sync.load, "from-async") == snapshot(tick=2)

    def test_iterators_are_plain_and_paged(
        self, make_sync: Callable[..., SyncSessionStore]
    ) -> None:
        store = make_sync()
        ids = [f"id-{i}" for i in range(5)]
        for session_id in ids:
            store.save(session_id, snapshot(session_id))
        pages = store.iter_ids(page_size=2)
        assert isinstance(pages, Iterator) and not isinstance(pages, list)
        assert sorted(pages) == ids
        infos = list(store.iter_info(page_size=2))
        assert sorted(info.session_id for info in infos) == ids
        first = store.iter_ids(page_size=1)
        assert next(first) in ids
        first.close()  # an abandoned iterator ends its listing on the store's loop
        assert store.list() == ids

    def test_store_errors_are_the_async_errors(
        self, make_sync: Callable[..., SyncSessionStore]
    ) -> None:
        store = make_sync(max_snapshot_bytes=2000)
        with pytest.raises(InvalidSessionIdError):
            store.save("", snapshot())
        with pytest.raises(SnapshotTooLargeError):
            store.save("s", snapshot(pad="x" * 3000))
        version = store.save("s", snapshot(tick=1), if_absent=True)
        with pytest.raises(ConflictError):
            store.save("s", snapshot(tick=2), if_absent=True)
        with pytest.raises(ConflictError):
            store.save("s", snapshot(tick=2), if_version=version + "x")
        assert store.has("s")
        with sessionstore.deadline(0), pytest.raises(StoreUnavailableError, match="deadline"):
            store.save("s", snapshot(tick=3))
        loaded = store.load("s")
        assert loaded is not None and loaded["tick"] == 1

"""copy_sessions between real stores: what counts as identical, what counts as failed."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sessionstore import FileSessionStore, MemorySessionStore, StoreConfigError, Versioned
from sessionstore.base import ObjectSessionStore
from sessionstore.copy import CopyReport, copy_sessions
from sessionstore.keys import make_key
from sessionstore.stores.s3 import S3SessionStore
from sessionstore.testing import Emulator, emulator_store, purge_prefix
from tests.contract import put_raw, snapshot


async def test_true_1_and_1_0_are_not_the_same_session(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    cases = {
        "bool": ({"approved": True, "ratio": 1.0}, {"approved": 1, "ratio": 1}),
        "float": ({"ratio": 1.0}, {"ratio": 1}),
        "zero": ({"x": [0.0]}, {"x": [-0.0]}),
        "nested": ({"a": {"b": [False]}}, {"a": {"b": [0]}}),
    }
    for session_id, (theirs, ours) in cases.items():
        await src.save(session_id, theirs)
        await dst.save(session_id, ours)
    await src.save("same", {"b": 1, "a": [1.5, True]})
    await dst.save("same", {"a": [1.5, True], "b": 1})  # key order does not matter
    conflicts = await copy_sessions(src, dst, delete_source=True)  # no ticks to compare
    assert (conflicts.copied, conflicts.skipped, len(conflicts.failures)) == (0, 1, 4)
    report = await copy_sessions(src, dst, delete_source=True, overwrite=True)
    assert (report.copied, report.skipped, report.failures) == (4, 0, [])
    for session_id, (theirs, _) in cases.items():
        copied = await dst.load(session_id)
        assert copied == theirs and repr(copied) == repr(theirs)
    assert await src.list() == []


async def test_a_stale_destination_is_a_failure_and_keeps_the_source() -> None:
    src, dst = MemorySessionStore(), MemorySessionStore(reject_stale=True)
    await src.save("s", snapshot(tick=3))
    await dst.save("s", snapshot(tick=9))
    report = await copy_sessions(src, dst, delete_source=True, overwrite=True)
    assert (report.copied, report.skipped, report.deleted) == (0, 0, 0)
    assert [session_id for session_id, _ in report.failures] == ["s"]
    assert "older than the stored tick 9" in report.failures[0][1]  # reject_stale refuses
    assert await src.load("s") == snapshot(tick=3)


async def test_a_canary_tells_two_spellings_of_one_s3_endpoint(
    make_s3_store: Any, localstack_s3: Emulator
) -> None:
    """127.0.0.1 and localhost name one LocalStack: nothing may be deleted."""
    source = make_s3_store()
    host = urlsplit(localstack_s3.endpoint).hostname
    other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
    options = dict(localstack_s3.options)
    options["endpoint_url"] = localstack_s3.endpoint.replace(str(host), other)
    await source.save("a", snapshot(tick=1))
    async with S3SessionStore(localstack_s3.bucket, prefix=source.prefix, **options) as alias:
        assert source.place != alias.place  # the spellings differ...
        with pytest.raises(StoreConfigError, match="same store"):  # ...the canary tells
            await copy_sessions(source, alias, delete_source=True)
    assert await source.list() == ["a"]


async def test_the_canary_leaves_nothing_behind(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    await src.save("a", snapshot(tick=1))
    report = await copy_sessions(src, dst, delete_source=True)
    assert (report.copied, report.deleted, report.failures) == (1, 1, [])
    assert await dst.list() == ["a"] and await src.list() == []


@pytest.fixture(params=["memory", "file", "gcs", "azure"])
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str
) -> AsyncIterator[tuple[ObjectSessionStore, ObjectSessionStore]]:
    """A source and a destination store of one kind (on an emulator: two prefixes).

    Not LocalStack S3: it refuses the conditional delete that --delete-source needs.
    """
    async with _two_stores(request.param, request, tmp_path, unique_prefix) as stores:
        yield stores


@contextlib.asynccontextmanager
async def _two_stores(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str
) -> AsyncIterator[tuple[ObjectSessionStore, ObjectSessionStore]]:
    if kind == "memory":
        yield MemorySessionStore(), MemorySessionStore()
        return
    if kind == "file":
        yield FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
        return
    emulator = request.getfixturevalue({"gcs": "fake_gcs", "azure": "azurite"}[kind])
    src = emulator_store(kind, emulator, prefix=f"{unique_prefix}src/")
    dst = emulator_store(kind, emulator, prefix=f"{unique_prefix}dst/")
    try:
        yield src, dst
    finally:
        for store in (src, dst):
            await purge_prefix(store)
            await store.aclose()


async def test_cp_replaces_only_an_older_destination(
    two_stores: tuple[ObjectSessionStore, ObjectSessionStore],
) -> None:
    """Destination s1 at tick 999, source s1 at tick 7: a conflict, both kept."""
    src, dst = two_stores
    theirs = {
        "newer": snapshot(tick=999),
        "same-tick": snapshot(tick=7, note="theirs"),
        "no-tick": {"note": "theirs"},
        "bool-tick": {"tick": True},
        "older": snapshot(tick=3),
        "identical": snapshot(tick=7),
    }
    for session_id, snap in theirs.items():
        await dst.save(session_id, snap)
    for session_id in [*theirs, "absent"]:
        await src.save(session_id, snapshot(tick=7))
    report = await copy_sessions(src, dst, delete_source=True, concurrency=3)
    assert (report.copied, report.skipped, report.deleted) == (2, 1, 3)
    conflicts = dict(report.failures)
    assert sorted(conflicts) == ["bool-tick", "newer", "no-tick", "same-tick"]
    assert all(why.startswith("conflict: ") for why in conflicts.values())
    assert "at tick 999, not older than the source's tick 7" in conflicts["newer"]
    assert "--overwrite replaces it" in conflicts["no-tick"]
    assert await src.list() == sorted(conflicts)  # the conflicts' sources stay
    for session_id in conflicts:
        assert await dst.load(session_id) == theirs[session_id]
    for session_id in ("older", "identical", "absent"):
        assert await dst.load(session_id) == snapshot(tick=7)
    again = await copy_sessions(src, dst, delete_source=True, overwrite=True)
    assert (again.copied, again.deleted, again.failures) == (4, 4, [])
    assert await src.list() == []
    for session_id in theirs:
        assert await dst.load(session_id) == snapshot(tick=7)


class Racing(FileSessionStore):
    """A destination where another writer lands right after each read of ``racing``."""

    racing = ""

    async def load_versioned(self, session_id: str) -> Versioned | None:
        got = await super().load_versioned(session_id)
        if session_id == self.racing:
            self.racing = ""
            await self.save(session_id, snapshot(tick=1000))
        return got


@pytest.mark.parametrize(
    ("before", "overwrite"),
    [(None, False), (snapshot(tick=3), False), (snapshot(tick=999), True)],
    ids=["absent", "older", "overwrite"],
)
async def test_a_writer_between_read_and_write_makes_a_conflict(
    tmp_path: Path, before: Any, overwrite: bool
) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), Racing(tmp_path / "dst")
    await src.save("s", snapshot(tick=7))
    if before is not None:
        await dst.save("s", before)
    dst.racing = "s"
    report = await copy_sessions(src, dst, delete_source=True, overwrite=overwrite)
    assert (report.copied, report.deleted) == (0, 0)
    assert report.failures == [("s", "conflict: the destination changed during the copy")]
    assert await dst.load("s") == snapshot(tick=1000)  # the racing writer's session
    assert await src.load("s") == snapshot(tick=7)


async def test_if_absent_and_overwrite_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="overwrite"):
        await copy_sessions(
            MemorySessionStore(), MemorySessionStore(), if_absent=True, overwrite=True
        )


# Values a lossy reader changes: integers beyond 64 bits (orjson read them as floats)
# and floats that need all 17 digits, subnormals, the extremes, -0.0, and decimal
# spellings longer than the shortest repr.
_EXACT_BODY = (
    b'{"tick": 7, "account_id": 123456789012345678901234567890,'
    b' "low": -9223372036854775809, "huge": 1' + b"0" * 400 + b","
    b' "floats": [0.30000000000000004, 5e-324, 1e-320, 2.2250738585072014e-308,'
    b" 2.225073858507201e-308, 1.7976931348623157e308, -0.0, 1e16, 9007199254740993.0,"
    b" 0.1000000000000000055511151231257827021181583404541015625, 1e19]}"
)


def _exact(value: Any) -> Any:
    """``value`` with every float spelled bit for bit (``float.hex``), to compare."""
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value.hex() if isinstance(value, float) else (type(value).__name__, value)


@pytest.mark.parametrize("kind", ["file", "azure"])
async def test_cp_moves_big_integers_and_hard_floats_exactly(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, unique_prefix: str
) -> None:
    """A body another writer stored (Python's json): cp --delete-source moves its
    values exactly, and only then deletes it."""
    async with _two_stores(kind, request, tmp_path, unique_prefix) as (src, dst):
        await _move_exactly(src, dst)


async def _move_exactly(src: ObjectSessionStore, dst: ObjectSessionStore) -> None:
    original = json.loads(_EXACT_BODY)
    await put_raw(src, make_key(src.prefix, "s"), _EXACT_BODY)
    await dst.save("lossy", {"tick": 7, "account_id": float(original["account_id"])})
    await put_raw(
        src,
        make_key(src.prefix, "lossy"),
        b'{"tick": 7, "account_id": 123456789012345678901234567890}',
    )
    report = await copy_sessions(src, dst, delete_source=True)
    # "lossy": the destination holds the rounded value at the same tick: a conflict,
    # not a skip (the sides differ exactly), and the exact original stays.
    assert (report.copied, report.skipped, report.deleted) == (1, 0, 1)
    assert [session_id for session_id, _ in report.failures] == ["lossy"]
    assert await src.list() == ["lossy"]
    copied = await dst.load("s")
    assert _exact(copied) == _exact(original)
    raw = (await dst._get(make_key(dst.prefix, "s"))).body
    assert _exact(json.loads(raw)) == _exact(original)  # what any exact reader sees


class Overwritten(MemorySessionStore):
    """A destination where another writer replaces each session right after a save."""

    async def save(self, session_id: str, snapshot: Any, **options: Any) -> str:
        await super().save(session_id, snapshot, **options)
        return await super().save(session_id, {"tick": 1000, "by": "another writer"})


class ChangingSource(MemorySessionStore):
    """A source where another writer saves a new version right after each read."""

    async def load_versioned(self, session_id: str) -> Versioned | None:
        got = await super().load_versioned(session_id)
        await self.save(session_id, snapshot(tick=8))
        return got


class Broken(MemorySessionStore):
    """A source whose read of ``bug`` fails with an error that is not a store error."""

    async def load_versioned(self, session_id: str) -> Versioned | None:
        if session_id == "bug":
            raise RuntimeError("a bug in a custom store")
        return await super().load_versioned(session_id)


class InFlight(MemorySessionStore):
    """A source that counts the reads in flight at once (each takes a few loop turns)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.most = 0

    async def load_versioned(self, session_id: str) -> Versioned | None:
        self.now += 1
        self.most = max(self.most, self.now)
        for _ in range(5):
            await asyncio.sleep(0)
        self.now -= 1
        return await super().load_versioned(session_id)


class Recording(FileSessionStore):
    """A file store that records the ids saved through it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.saved: list[str] = []

    async def save(self, session_id: str, snapshot: Any, **options: Any) -> str:
        self.saved.append(session_id)
        return await super().save(session_id, snapshot, **options)


class Gated(MemorySessionStore):
    """A source whose reads wait for ``gate``; ``both_wait`` is set once two wait."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.both_wait = asyncio.Event(), asyncio.Event()
        self.waiting = 0

    async def load_versioned(self, session_id: str) -> Versioned | None:
        self.waiting += 1
        if self.waiting == 2:
            self.both_wait.set()
        await self.gate.wait()
        return await super().load_versioned(session_id)


class TestOnLocalStores:
    """copy_sessions case by case on the memory and file stores (no emulator):
    scripts/mutate runs these (pyproject.toml, [tool.mutmut])."""

    async def test_a_copy_keeps_the_source_unless_told_and_copies_only_the_ids_given(self) -> None:
        src, dst = MemorySessionStore(), MemorySessionStore()
        for session_id in ("a", "b", "c"):
            await src.save(session_id, snapshot(tick=1))
        report = await copy_sessions(src, dst, ids=["c", "a"], concurrency=1)
        assert (report.copied, report.skipped, report.deleted, report.failures) == (2, 0, 0, [])
        assert await dst.list() == ["a", "c"]
        assert await src.list() == ["a", "b", "c"]

    async def test_every_kind_of_skip_counts_once_per_session(self) -> None:
        src, dst = MemorySessionStore(), MemorySessionStore()
        for session_id in ("same-1", "same-2", "theirs-1", "theirs-2"):
            await src.save(session_id, snapshot(tick=7))
        await dst.save("same-1", snapshot(tick=7))
        await dst.save("same-2", snapshot(tick=7))
        identical = await copy_sessions(src, dst, ids=["same-1", "same-2"])
        assert (identical.copied, identical.skipped, identical.failures) == (0, 2, [])
        await dst.save("theirs-1", snapshot(tick=1, note="theirs"))
        await dst.save("theirs-2", snapshot(tick=1, note="theirs"))
        kept = await copy_sessions(src, dst, ids=["theirs-1", "theirs-2"], if_absent=True)
        assert (kept.copied, kept.skipped, kept.failures) == (0, 2, [])
        assert await dst.load("theirs-1") == snapshot(tick=1, note="theirs")

    async def test_a_session_created_meanwhile_is_skipped_with_if_absent(
        self, tmp_path: Path
    ) -> None:
        src, dst = FileSessionStore(tmp_path / "src"), Racing(tmp_path / "dst")
        await src.save("same", snapshot(tick=7))
        await dst.save("same", snapshot(tick=7))
        await src.save("s", snapshot(tick=7))
        dst.racing = "s"
        report = await copy_sessions(src, dst, ids=["same", "s"], concurrency=1, if_absent=True)
        assert (report.copied, report.skipped, report.failures) == (0, 2, [])
        assert await dst.load("s") == snapshot(tick=1000)  # the racing writer's session

    async def test_the_listing_runs_at_most_twice_concurrency_ids_ahead(self) -> None:
        # A listing of millions of ids is never read into memory: a queue of
        # 2 x concurrency ids lies between it and the workers.
        gate = asyncio.Event()

        class Gated(MemorySessionStore):
            async def load_versioned(self, session_id: str) -> Versioned | None:
                await gate.wait()
                return await super().load_versioned(session_id)

        src, dst = Gated(), MemorySessionStore()
        for i in range(30):
            await src.save(f"s{i:02d}", snapshot(tick=1))
        pulled: list[str] = []

        def ids() -> Iterator[str]:
            for i in range(30):
                pulled.append(f"s{i:02d}")
                yield pulled[-1]

        copying = asyncio.create_task(copy_sessions(src, dst, ids=ids(), concurrency=3))
        for _ in range(100):  # until every worker waits at the gate and the queue is full
            await asyncio.sleep(0)
        assert len(pulled) == 3 + 2 * 3 + 1  # one per worker, the queue's, one waiting
        gate.set()
        report = await copying
        assert (report.copied, report.failures, len(pulled)) == (30, [], 30)

    async def test_a_missing_source_session_is_a_failure(self) -> None:
        src, dst = MemorySessionStore(), MemorySessionStore()
        await src.save("here", snapshot(tick=1))
        report = await copy_sessions(src, dst, ids=["here", "gone"], delete_source=True)
        assert (report.copied, report.deleted) == (1, 1)
        assert report.failures == [("gone", "not found in the source")]

    async def test_a_copy_that_reads_back_differently_does_not_count(self) -> None:
        src, dst = MemorySessionStore(), Overwritten()
        await src.save("s", snapshot(tick=7))
        report = await copy_sessions(src, dst, delete_source=True)
        assert (report.copied, report.deleted) == (0, 0)
        assert report.failures == [("s", "the copy read back differs")]
        assert await src.load("s") == snapshot(tick=7)

    async def test_a_source_changed_during_the_copy_is_not_deleted(self) -> None:
        src, dst = ChangingSource(), MemorySessionStore()
        await src.save("s", snapshot(tick=7))
        report = await copy_sessions(src, dst, delete_source=True)
        assert (report.copied, report.deleted) == (1, 0)
        assert report.failures == [("s", "changed in the source during the copy")]
        assert await src.load("s") == snapshot(tick=8)  # the new version
        assert await dst.load("s") == snapshot(tick=7)

    async def test_one_bad_session_does_not_stop_the_copy(self) -> None:
        src, dst = Broken(), MemorySessionStore()
        for session_id in ("a", "bug", "z"):
            await src.save(session_id, snapshot(tick=1))
        await put_raw(src, make_key(src.prefix, "corrupt"), b"{not json")
        report = await copy_sessions(src, dst, concurrency=1)
        assert report.copied == 2 and await dst.list() == ["a", "z"]
        failures = dict(report.failures)
        assert sorted(failures) == ["bug", "corrupt"]
        assert failures["bug"] == "RuntimeError: a bug in a custom store"
        assert "corrupt" in failures["corrupt"] and failures["corrupt"] != "None"

    async def test_progress_sees_the_report_after_each_session(self) -> None:
        src, dst = MemorySessionStore(), MemorySessionStore()
        for session_id in ("a", "b", "c"):
            await src.save(session_id, snapshot(tick=1))
        seen: list[tuple[int, int]] = []
        report = await copy_sessions(
            src, dst, concurrency=1, progress=lambda r: seen.append((r.done, r.copied))
        )
        assert seen == [(1, 1), (2, 2), (3, 3)] and report.done == 3

    @pytest.mark.parametrize("concurrency", [1, 3, None])
    async def test_at_most_concurrency_sessions_are_in_flight(
        self, concurrency: int | None
    ) -> None:
        src, dst = InFlight(), MemorySessionStore()
        ids = [f"s{n:02}" for n in range(40)]
        for session_id in ids:
            await src.save(session_id, snapshot(tick=1))
        if concurrency is None:  # the default
            report = await copy_sessions(src, dst)
        else:
            report = await copy_sessions(src, dst, concurrency=concurrency)
        assert (report.copied, report.failures) == (40, [])
        assert src.most == (16 if concurrency is None else concurrency)

    async def test_ids_are_read_ahead_a_bounded_number_at_a_time(self) -> None:
        src, dst = InFlight(), MemorySessionStore()
        pulled: list[int] = []
        started: list[int] = []

        def ids() -> Iterator[str]:
            for n in range(100):
                if src.now and not started:
                    started.append(len(pulled))  # ids handed out when the first read runs
                pulled.append(n)
                yield f"s{n:02}"

        report = await copy_sessions(src, dst, ids=ids(), concurrency=4)
        assert len(report.failures) == 100  # none stored: all "not found"
        assert started and started[0] <= 2 * 4 + 1

    async def test_concurrency_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="concurrency"):
            await copy_sessions(MemorySessionStore(), MemorySessionStore(), concurrency=0)

    async def test_one_place_as_both_sides_is_refused_before_anything_is_written(
        self,
        tmp_path: Path,
    ) -> None:
        src, dst = FileSessionStore(tmp_path / "d"), Recording(tmp_path / "d")
        await src.save("a", snapshot(tick=1))
        with pytest.raises(StoreConfigError, match="same store"):
            await copy_sessions(src, dst, delete_source=True)
        assert dst.saved == []  # not even a canary
        assert await src.list() == ["a"]

    async def test_a_canary_tells_two_spellings_of_one_directory(self, tmp_path: Path) -> None:
        (tmp_path / "d" / "sub").mkdir(parents=True)
        src, alias = FileSessionStore(tmp_path / "d"), FileSessionStore(tmp_path / "d/sub/..")
        await src.save("a", snapshot(tick=1))
        assert src.place != alias.place  # the spellings differ...
        with pytest.raises(StoreConfigError, match="same store"):  # ...the canary tells
            await copy_sessions(src, alias, delete_source=True)
        assert await src.list() == ["a"]

    async def test_a_failing_progress_callback_ends_the_copy(self, tmp_path: Path) -> None:
        # It used to kill its worker and leave the listing blocked on a full queue: a
        # copy that never returned, not even when cancelled. (File stores: their calls
        # wait on a thread, so the listing runs ahead and fills the queue meanwhile.)
        src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
        for i in range(10):
            await src.save(f"s{i}", snapshot(tick=1))

        def progress(report: CopyReport) -> None:
            if report.done == 2:
                raise BrokenPipeError("the terminal has gone")

        with pytest.raises(BrokenPipeError, match="terminal"):
            await copy_sessions(src, dst, concurrency=1, progress=progress)
        assert await dst.list() == ["s0", "s1"]

    async def test_a_cancelled_copy_stops_the_copies_in_flight(self) -> None:
        src, dst = Gated(), MemorySessionStore()
        gate, both_wait = src.gate, src.both_wait
        for i in range(20):
            await src.save(f"s{i:02}", snapshot(tick=1))
        copying = asyncio.create_task(copy_sessions(src, dst, concurrency=2))
        await both_wait.wait()  # both workers wait in a read
        copying.cancel()
        gate.set()  # the reads in flight could go on now: the cancel must stop them
        with pytest.raises(asyncio.CancelledError):
            await copying
        assert await dst.list() == []

    async def test_an_interrupted_copy_ends_its_workers_and_raises_the_interrupt(
        self,
    ) -> None:
        src, dst = Gated(), MemorySessionStore()
        gate, both_wait = src.gate, src.both_wait

        class Interrupt(BaseException):
            """Like KeyboardInterrupt, from the listing."""

        async def listing() -> AsyncIterator[str]:
            for i in range(2):  # no more than both workers take: the queue never fills
                yield f"s{i}"
            await both_wait.wait()
            raise Interrupt

        for i in range(2):
            await src.save(f"s{i}", snapshot(tick=1))
        src.iter_ids = lambda **_: listing()  # type: ignore[method-assign]
        with pytest.raises(Interrupt):
            await copy_sessions(src, dst, concurrency=2)
        assert asyncio.all_tasks() == {asyncio.current_task()}  # the workers have ended
        gate.set()
        await asyncio.sleep(0)
        assert await dst.list() == []

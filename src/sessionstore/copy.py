"""Copy or migrate sessions between any two stores, with bounded memory.

Ids stream from the source's listing page by page into a bounded queue; ``concurrency``
workers copy one session each at a time, so at most ``concurrency`` snapshots are in
memory. A session already identical at the destination is skipped (so an interrupted
copy resumes where it stopped); every copy is read back and compared before it counts
(value-exact: ``true`` is not ``1``, ``1`` is not ``1.0``, ``0.0`` is not ``-0.0``),
and a source session is deleted (with ``delete_source``) only after that check, and
only if it is still at the version that was copied. Before a ``delete_source`` copy
starts, a canary proves that source and destination are different places.

A destination session that differs is replaced only if it is older (both carry an
integer ``tick`` and the destination's is lower) or with ``overwrite``; otherwise it
is a conflict: a failure, and its source is kept. Every write is conditional on what
was read (``if_absent`` for a missing session, ``if_version`` for an existing one), so
a writer landing in between makes it a conflict too (docs/DESIGN.md, "Configuration").
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sessionstore.base import ObjectSessionStore
from sessionstore.errors import (
    ConflictError,
    SessionStoreError,
    StaleSnapshotError,
    StoreConfigError,
)

__all__ = ["CopyReport", "copy_sessions"]


@dataclass
class CopyReport:
    """What a copy did: counts, and the id and error of every failed session."""

    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def done(self) -> int:
        """Sessions handled so far, whatever the outcome."""
        return self.copied + self.skipped + len(self.failures)


def _same_json(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` would be written as the same JSON.

    Unlike ``==``, types must match at every depth: ``True`` is not ``1`` and ``1`` is
    not ``1.0`` (nor ``0.0`` ``-0.0``). Key order does not matter.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_same_json, a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def _not_older(theirs: Any, ours: Any) -> str | None:
    """Why the destination snapshot ``theirs`` may not be replaced by ``ours``, or None.

    Replaceable only when both carry an integer ``tick`` and the destination's is lower.
    """
    their_tick, our_tick = theirs.get("tick"), ours.get("tick")
    if type(their_tick) is int and type(our_tick) is int:
        if their_tick < our_tick:
            return None
        return (
            f"conflict: the destination holds a different session at tick {their_tick},"
            f" not older than the source's tick {our_tick}; --overwrite replaces it"
        )
    return (
        "conflict: the destination holds a different session and the two do not both"
        " carry an integer tick to tell which is older; --overwrite replaces it"
    )


async def _check_different_places(
    source: ObjectSessionStore, destination: ObjectSessionStore
) -> None:
    """StoreConfigError if ``source`` sees a canary written to ``destination``.

    Comparing spellings (``file:/d`` and ``file:/d/sub/..``, ``127.0.0.1`` and
    ``localhost``) cannot be made safe; what one place holds, the other sees.
    """
    same = source.place == destination.place
    if not same:
        canary = f"sessionstore-cp-canary-{uuid.uuid4().hex}"
        await destination.save(canary, {"tick": 0, "canary": "sessionstore cp --delete-source"})
        try:
            same = await source.has(canary)
        finally:
            await destination.delete(canary)
    if same:
        raise StoreConfigError(
            f"source and destination are the same store ({source!r} sees what is written"
            f" to {destination!r}): --delete-source would delete the only copy"
        )


async def _ids(source: ObjectSessionStore, ids: Iterable[str] | None) -> AsyncIterator[str]:
    if ids is not None:
        for session_id in ids:
            yield session_id
        return
    async for session_id in source.iter_ids():
        yield session_id


async def copy_sessions(
    source: ObjectSessionStore,
    destination: ObjectSessionStore,
    *,
    ids: Iterable[str] | None = None,
    concurrency: int = 16,
    if_absent: bool = False,
    overwrite: bool = False,
    delete_source: bool = False,
    progress: Callable[[CopyReport], None] | None = None,
) -> CopyReport:
    """Copy every session (or ``ids``) from ``source`` to ``destination``.

    Failures of single sessions are collected in the report, not raised.

    A destination session identical to the source's is skipped. One that differs is
    kept with ``if_absent`` (skipped); otherwise it is replaced only if it is older
    (both snapshots carry an integer ``tick`` and the destination's is lower) or with
    ``overwrite``, and else reported as a conflict (a failure whose source is not
    deleted). Writes are conditional on the destination version read, so a writer
    landing between the read and the write makes a conflict, never a lost session.

    With ``delete_source``, before anything is copied or deleted, a canary proves the
    two are different places: a uniquely named marker session is written to the
    destination, the source must not see it, and it is removed again.

    Raises:
        ValueError: ``concurrency`` is below 1, or both ``if_absent`` and ``overwrite``.
        StoreConfigError: ``delete_source`` and the source sees what is written to the
            destination: one place under two spellings (every session would count as
            identical and then be deleted).
        SessionStoreError: listing the source, or writing the canary, failed.
        Exception: what ``progress`` raised; the copy stops there (sessions already
            copied stay copied, as after an interrupted copy).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if if_absent and overwrite:
        raise ValueError("if_absent keeps every destination session; overwrite replaces them")
    if delete_source:
        await _check_different_places(source, destination)
    report = CopyReport()
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency * 2)

    async def copy_one(session_id: str) -> None:
        got = await source.load_versioned(session_id)
        if got is None:
            report.failures.append((session_id, "not found in the source"))
            return
        theirs = await destination.load_versioned(session_id)
        if theirs is not None and _same_json(theirs.snapshot, got.snapshot):
            report.skipped += 1
        else:
            if theirs is not None:
                if if_absent:
                    report.skipped += 1  # --if-absent: the destination keeps its own
                    return
                why = None if overwrite else _not_older(theirs.snapshot, got.snapshot)
                if why is not None:
                    report.failures.append((session_id, why))
                    return
            try:
                if theirs is None:
                    await destination.save(session_id, got.snapshot, if_absent=True)
                else:
                    await destination.save(session_id, got.snapshot, if_version=theirs.version)
            except StaleSnapshotError as exc:  # the sides differ: not a skip
                report.failures.append((session_id, str(exc)))
                return
            except ConflictError:
                if if_absent:
                    report.skipped += 1  # created meanwhile: the destination keeps its own
                else:
                    report.failures.append(
                        (session_id, "conflict: the destination changed during the copy")
                    )
                return
            if not _same_json(await destination.load(session_id), got.snapshot):
                report.failures.append((session_id, "the copy read back differs"))
                return
            report.copied += 1
        if delete_source:
            try:
                await source.delete(session_id, if_version=got.version)
                report.deleted += 1
            except ConflictError:
                report.failures.append((session_id, "changed in the source during the copy"))

    #: What the caller's ``progress`` raised: it ends the copy (a worker that died of
    #: it would leave the listing blocked on a full queue forever).
    progress_failed: list[BaseException] = []

    async def worker() -> None:
        while (session_id := await queue.get()) is not None:
            if progress_failed:
                continue  # the copy is ending: take what is queued, copy nothing more
            try:
                await copy_one(session_id)
            except SessionStoreError as exc:
                report.failures.append((session_id, str(exc)))
            except Exception as exc:  # one bad session must not stop the copy
                report.failures.append((session_id, f"{type(exc).__name__}: {exc}"))
            if progress is not None:
                try:
                    progress(report)
                except BaseException as exc:
                    progress_failed.append(exc)

    async def end_workers() -> None:
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        async for session_id in _ids(source, ids):
            if progress_failed:
                break
            await queue.put(session_id)
    except Exception:
        await end_workers()  # the listing failed: finish what is queued, then raise
        raise
    except BaseException:  # cancelled or interrupted: stop the copies in flight too
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    await end_workers()
    if progress_failed:
        raise progress_failed[0]
    return report

"""Serverless: warm invocations through the sync API, and asyncio.run per invocation.

(b) ``warm``: client CPU per save and per load through :class:`SyncSessionStore`,
against the same operations written by hand on the provider's synchronous SDK
(boto3, google-cloud-storage, azure-storage-blob; ``handwritten.SYNC_BY_HAND``), at
10 KB and 1 MB, one call at a time from the main thread as a handler makes them.
Rounds alternate which side goes first; each round's ratio is store / by hand.

(c) ``per_invocation``: what one invocation (restore a session with
``load_versioned``, save it with ``if_version``) costs with ``asyncio.run`` per
invocation on a module-level async store, against the same invocation through a warm
SyncSessionStore: CPU and wall time per invocation, ratio per round.

``python -m benchmarks.serverless [--quick]`` measures these and the cold start rows
of (a) (``coldstart.first_save``, both APIs) and rewrites the "Serverless" section of
BENCHMARKS.md; ``python -m benchmarks`` includes them in the whole page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import coldstart
from benchmarks.handwritten import SYNC_BY_HAND
from benchmarks.ops import SIZES, cloud_arguments, cpu_seconds, prepare_emulators, purge, say
from benchmarks.snapshots import agentick_snapshot
from sessionstore import SyncSessionStore
from sessionstore.testing import Emulator, emulator_store

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Pairs:
    """Per-round figures of two sides measured back to back: ``a`` / ``b`` ratios."""

    a: list[float] = dataclasses.field(default_factory=list)
    b: list[float] = dataclasses.field(default_factory=list)

    def ratio(self) -> tuple[float, float, float]:
        """(median, lowest, highest) of the per-round ratios a / b."""
        ratios = [x / y for x, y in zip(self.a, self.b, strict=True)]
        return statistics.median(ratios), min(ratios), max(ratios)


def _batch(fn: Callable[[str], Any], ids: list[str]) -> float:
    """CPU µs per call of ``fn(id)`` over ``ids``, one at a time."""
    gc.collect()
    cpu0 = cpu_seconds()
    for session_id in ids:
        fn(session_id)
    return (cpu_seconds() - cpu0) / len(ids) * 1e6


def warm(provider: str, emulator: Emulator, rounds: int, ops: dict[str, int]) -> dict[str, Pairs]:
    """(b): CPU per save and load, SyncSessionStore (a) vs the sync SDK by hand (b)."""
    prefix = f"bench-sync-{uuid.uuid4().hex}/"
    store = SyncSessionStore(emulator_store(provider, emulator, prefix=prefix))
    hand = SYNC_BY_HAND[provider](emulator, prefix + "hand/")
    sides: dict[str, Any] = {"store": store, "hand": hand}
    cells: dict[str, Pairs] = {}
    try:
        for size_name, size in SIZES.items():
            snapshot = agentick_snapshot(size)
            ids = [f"s{i}" for i in range(ops[size_name])]
            for side in sides.values():  # warm: clients built, connections open
                _batch(lambda i, side=side, snap=snapshot: side.save(i, snap), ids[:3])
            save, load = Pairs(), Pairs()
            for rnd in range(rounds):
                for name in ("store", "hand") if rnd % 2 == 0 else ("hand", "store"):
                    side = sides[name]
                    at = 0 if name == "store" else 1
                    for pairs, call in (
                        (save, lambda i, side=side, snap=snapshot: side.save(i, snap)),
                        (load, side.load),
                    ):
                        (pairs.a, pairs.b)[at].append(_batch(call, ids))
            cells[f"save {size_name}"], cells[f"load {size_name}"] = save, load
    finally:
        store.close()
        hand.close()
        for where in (prefix, prefix + "hand/"):
            asyncio.run(purge(where, provider, emulator))
    return cells


def per_invocation(
    provider: str, emulator: Emulator, rounds: int, invocations: int
) -> dict[str, Pairs]:
    """(c): asyncio.run per invocation (a) vs a warm SyncSessionStore (b), 10 KB."""
    prefix = f"bench-invoke-{uuid.uuid4().hex}/"
    snapshot = agentick_snapshot(SIZES["10 KB"])
    async_store = emulator_store(provider, emulator, prefix=prefix + "async/")
    sync_store = SyncSessionStore(emulator_store(provider, emulator, prefix=prefix + "sync/"))

    async def turn() -> None:
        current = await async_store.load_versioned("s")
        version = None if current is None else current.version
        await async_store.save("s", snapshot, if_version=version, if_absent=version is None)

    def with_asyncio_run(_: str) -> None:
        asyncio.run(turn())

    def with_sync_store(_: str) -> None:
        current = sync_store.load_versioned("s")
        version = None if current is None else current.version
        sync_store.save("s", snapshot, if_version=version, if_absent=version is None)

    cpu, wall = Pairs(), Pairs()
    ids = [str(i) for i in range(invocations)]
    try:
        for fn in (with_asyncio_run, with_sync_store):
            _batch(fn, ids[:3])
        for rnd in range(rounds):
            order = (0, 1) if rnd % 2 == 0 else (1, 0)
            for at in order:
                fn = (with_asyncio_run, with_sync_store)[at]
                started = time.perf_counter()
                (cpu.a, cpu.b)[at].append(_batch(fn, ids))
                (wall.a, wall.b)[at].append((time.perf_counter() - started) / invocations * 1e6)
    finally:
        asyncio.run(async_store.aclose())
        sync_store.close()
        asyncio.run(purge(prefix, provider, emulator))
    return {"cpu": cpu, "wall": wall}


def measure(
    emulators: dict[str, Emulator], quick: bool, progress: Callable[[str], None]
) -> dict[str, Any]:
    """(a), (b) and (c) for every provider."""
    rounds = 3 if quick else 10
    ops = {"10 KB": 20, "1 MB": 4} if quick else {"10 KB": 100, "1 MB": 20}
    repeats = 3 if quick else 9
    results: dict[str, Any] = {"rounds": rounds, "ops": ops, "repeats": repeats}
    for key in ("first_save", "first_save_sync", "warm", "per_invocation"):
        results[key] = {}
    for provider, emulator in emulators.items():
        progress(f"{provider}: fresh process to first save, async and sync")
        results["first_save"][provider] = coldstart.first_save(provider, emulator, repeats)
        results["first_save_sync"][provider] = coldstart.first_save(
            provider, emulator, repeats, api="sync"
        )
        progress(f"{provider}: warm invocations through the sync API")
        results["warm"][provider] = warm(provider, emulator, rounds, ops)
        progress(f"{provider}: asyncio.run per invocation vs a warm sync store")
        results["per_invocation"][provider] = per_invocation(
            provider, emulator, rounds, 10 if quick else 30
        )
        asyncio.run(purge(coldstart.COLD_PREFIX, provider, emulator))
    return results


def _range(pairs: Pairs) -> str:
    median, low, high = pairs.ratio()
    return f"**{median:.2f}** ({low:.2f}-{high:.2f})"


def section(results: dict[str, Any]) -> list[str]:
    """The "Serverless" section of BENCHMARKS.md."""
    out = [
        "## Serverless",
        "",
        "What a function pays: (a) a fresh process to its first completed save, (b) a warm"
        " invocation's client CPU through the sync API, (c) `asyncio.run` per invocation"
        " against a warm sync store (`benchmarks/serverless.py`). Each side is measured"
        " against the code a user would write by hand with the same SDK; for the sync API,"
        " the provider's synchronous SDK (boto3, google-cloud-storage, azure-storage-blob)."
        " Ratios are per round (or per pair of fresh processes), the median in bold and the"
        " lowest and highest in brackets.",
        "",
        f"### (a) Fresh process to first save ({results['repeats']} pairs of processes,"
        " order alternating)",
        "",
        "| provider | async store ms | aioboto3 / SDK (async) by hand ms | ratio (range)"
        " | sync store ms | sync SDK by hand ms | ratio (range) |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for provider, first in results["first_save"].items():
        sync = results["first_save_sync"][provider]
        out.append(
            f"| {provider} | {first['store_ms']:.0f} | {first['hand_ms']:.0f}"
            f" | **{first['ratio']:.2f}** ({first['low']:.2f}-{first['high']:.2f})"
            f" | {sync['store_ms']:.0f} | {sync['hand_ms']:.0f}"
            f" | **{sync['ratio']:.2f}** ({sync['low']:.2f}-{sync['high']:.2f}) |"
        )
    ops = results["ops"]
    out += [
        "",
        f"### (b) Warm invocations through the sync API ({results['rounds']} rounds of"
        f" {ops['10 KB']} operations at 10 KB, {ops['1 MB']} at 1 MB)",
        "",
        "Client CPU (user+sys, all threads, so any worker thread counts) per"
        " operation, one call at a time from the main thread: SyncSessionStore against the"
        " provider's sync SDK by hand.",
        "",
        "| provider | op | size | store CPU µs/op | by-hand CPU µs/op | ratio (range) |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for provider, cells in results["warm"].items():
        for key, pairs in cells.items():
            op, size = key.split(" ", 1)
            out.append(
                f"| {provider} | {op} | {size} | {statistics.median(pairs.a):,.0f}"
                f" | {statistics.median(pairs.b):,.0f} | {_range(pairs)} |"
            )
    out += [
        "",
        f"### (c) `asyncio.run` per invocation vs a warm sync store ({results['rounds']} rounds)",
        "",
        "One invocation restores a 10 KB session (`load_versioned`) and saves it with"
        " `if_version`. Left: a module-level async store and `asyncio.run(...)` per"
        " invocation (a new event loop each time, so the store builds a new SDK client and"
        " connections for each); right: a module-level SyncSessionStore.",
        "",
        "| provider | asyncio.run CPU µs | sync store CPU µs | CPU ratio (range)"
        " | asyncio.run wall µs | sync store wall µs | wall ratio (range) |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for provider, cell in results["per_invocation"].items():
        cpu, wall = cell["cpu"], cell["wall"]
        out.append(
            f"| {provider} | {statistics.median(cpu.a):,.0f} | {statistics.median(cpu.b):,.0f}"
            f" | {_range(cpu)} | {statistics.median(wall.a):,.0f}"
            f" | {statistics.median(wall.b):,.0f} | {_range(wall)} |"
        )
    return [*out, ""]


def splice(page: str, lines: list[str]) -> str:
    """``page`` with its "## Serverless" section replaced by ``lines`` (or added before
    "## Notes")."""
    text = "\n".join(lines)
    start = page.find("\n## Serverless\n")
    if start >= 0:
        end = page.find("\n## ", start + 1)
        return page[: start + 1] + text + (page[end:] if end >= 0 else "\n")
    notes = page.find("\n## Notes\n")
    if notes < 0:
        return page.rstrip("\n") + "\n\n" + text + "\n"
    return page[: notes + 1] + text + page[notes:]


def main() -> None:
    """Measure (a), (b), (c) and rewrite the Serverless section of BENCHMARKS.md."""
    args = cloud_arguments(__doc__.split("\n")[0])
    emulators = prepare_emulators(args.providers, args.bucket)
    lines = section(measure(emulators, args.quick, say))
    path = ROOT / "BENCHMARKS.md"
    path.write_text(splice(path.read_text(), lines))
    say(f"wrote the Serverless section of {path}")


if __name__ == "__main__":
    main()

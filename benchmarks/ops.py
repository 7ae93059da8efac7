"""Client CPU per operation and throughput: store vs hand-written, interleaved."""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from benchmarks.handwritten import BY_HAND
from benchmarks.snapshots import agentick_snapshot
from sessionstore.testing import Emulator, emulator_store, purge_prefix


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cell:
    """Medians of one (provider, op, size, concurrency) for store and baseline."""

    provider: str
    op: str
    size: str
    concurrency: int
    store_cpu_us: float
    hand_cpu_us: float
    store_ops_s: float
    hand_ops_s: float

    @property
    def cpu_ratio(self) -> float:
        return self.store_cpu_us / self.hand_cpu_us


async def _batch(fn: Any, ids: list[str], concurrency: int) -> tuple[float, float]:
    """Run ``fn(id)`` for every id; return (CPU µs per op, ops per second)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(session_id: str) -> None:
        async with sem:
            await fn(session_id)

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in ids))
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    return cpu / len(ids) * 1e6, len(ids) / wall


def build_store(provider: str, emulator: Emulator, prefix: str) -> Any:
    """The sessionstore store for ``provider`` with default options."""
    return emulator_store(provider, emulator, prefix=prefix)


SIZES = {"10 KB": 10_000, "1 MB": 1_000_000}


async def measure(
    provider: str, emulator: Emulator, *, repeats: int, ops: dict[str, int]
) -> list[Cell]:
    """Every cell of one provider: save and load, each size, concurrency 1 and 32."""
    prefix = f"bench-{uuid.uuid4().hex}/"
    store = build_store(provider, emulator, prefix)
    hand = BY_HAND[provider](emulator, prefix + "hand/")
    cells: list[Cell] = []
    try:
        for size_name, size in SIZES.items():
            snapshot = agentick_snapshot(size)
            n = ops[size_name]
            ids = [f"s{i}" for i in range(n)]
            await store.save("warm", snapshot)  # open clients, warm pools
            await hand.save("warm", snapshot)
            for concurrency in (1, 32):
                runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
                for rep in range(repeats):
                    order = [("store", store), ("hand", hand)]
                    if rep % 2:
                        order.reverse()
                    for name, impl in order:

                        async def save(i: str, impl: Any = impl, snap: Any = snapshot) -> None:
                            await impl.save(i, snap)

                        async def load(i: str, impl: Any = impl) -> None:
                            await impl.load(i)

                        runs.setdefault(("save", name), []).append(
                            await _batch(save, ids, concurrency)
                        )
                        runs.setdefault(("load", name), []).append(
                            await _batch(load, ids, concurrency)
                        )
                for op in ("save", "load"):
                    s, h = runs[(op, "store")], runs[(op, "hand")]
                    cells.append(
                        Cell(
                            provider,
                            op,
                            size_name,
                            concurrency,
                            statistics.median(r[0] for r in s),
                            statistics.median(r[0] for r in h),
                            statistics.median(r[1] for r in s),
                            statistics.median(r[1] for r in h),
                        )
                    )
    finally:
        await hand.aclose()
        await purge_prefix(store)
        await store.aclose()
        async with build_store(provider, emulator, prefix + "hand/") as cleaner:
            await purge_prefix(cleaner)
    return cells

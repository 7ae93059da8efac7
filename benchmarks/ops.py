"""Client CPU per operation and throughput: store vs hand-written, interleaved.

For each (size, concurrency) the store and the hand-written baseline take turns,
round after round (store first in even rounds, baseline first in odd ones): each
turn saves a batch of snapshots and loads them back. CPU is the process's user+sys
time (every thread, so GCS's worker threads count) over the batch, divided by the
operations; the emulators run in other processes and do not count. A cell reports
the medians over the rounds, and the store/baseline ratio of each round, whose
median is the headline and whose spread shows the noise of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.handwritten import BY_HAND
from benchmarks.snapshots import agentick_snapshot
from sessionstore.testing import (
    Emulator,
    azurite_emulator,
    emulator_store,
    fake_gcs_emulator,
    localstack_s3_emulator,
    purge_prefix,
)

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000}
CONCURRENCY = (1, 32)
BATCH_TIMEOUT = 300.0  # seconds: a hung emulator fails the run instead of stalling it


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cell:
    """One (provider, op, size, concurrency): per-round figures of store and baseline."""

    provider: str
    op: str
    size: str
    concurrency: int
    store_cpu_us: list[float] = field(default_factory=list)
    hand_cpu_us: list[float] = field(default_factory=list)
    store_ops_s: list[float] = field(default_factory=list)
    hand_ops_s: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Store/baseline CPU per op of each round (paired: same round, same load)."""
        return [s / h for s, h in zip(self.store_cpu_us, self.hand_cpu_us, strict=True)]

    @property
    def cpu_ratio(self) -> float:
        """Median of the per-round CPU ratios: <= 1.0 means the store costs no more."""
        return statistics.median(self.ratios)

    @property
    def ops_ratio(self) -> float:
        """Median of the per-round throughput ratios: >= 1.0 means the store is as fast."""
        pairs = zip(self.store_ops_s, self.hand_ops_s, strict=True)
        return statistics.median(s / h for s, h in pairs)

    def median(self, name: str) -> float:
        """Median of one per-round series, e.g. ``median("store_cpu_us")``."""
        values: list[float] = getattr(self, name)
        return statistics.median(values)


async def run_batch(
    fn: Callable[[str], Awaitable[Any]], ids: list[str], concurrency: int
) -> tuple[float, float]:
    """Run ``fn(id)`` for every id, ``concurrency`` at a time: (CPU µs/op, ops/s)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(session_id: str) -> None:
        async with sem:
            await fn(session_id)

    gc.collect()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in ids)), BATCH_TIMEOUT)
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    return cpu / len(ids) * 1e6, len(ids) / wall


def build_store(provider: str, emulator: Emulator, prefix: str) -> Any:
    """The sessionstore store for ``provider`` with default options."""
    return emulator_store(provider, emulator, prefix=prefix)


async def purge(impl_prefix: str, provider: str, emulator: Emulator) -> None:
    """Delete every object under ``impl_prefix``, 16 at a time."""
    async with build_store(provider, emulator, impl_prefix) as store:
        await purge_prefix(store)


@contextlib.asynccontextmanager
async def side_by_side(
    provider: str, emulator: Emulator, tag: str
) -> AsyncIterator[dict[str, Any]]:
    """The store and the hand-written baseline on a fresh prefix (``store``, ``hand``).

    On exit both are closed and everything they wrote is deleted.
    """
    prefix = f"bench-{tag}-{uuid.uuid4().hex}/"
    impls: dict[str, Any] = {
        "store": build_store(provider, emulator, prefix),
        "hand": BY_HAND[provider](emulator, prefix + "hand/"),
    }
    try:
        yield impls
    finally:
        await impls["hand"].aclose()
        await impls["store"].aclose()
        await purge(prefix, provider, emulator)
        await purge(prefix + "hand/", provider, emulator)


async def measure(
    provider: str,
    emulator: Emulator,
    *,
    rounds: int,
    ops: dict[str, int],
    progress: Callable[[str], None] = lambda _: None,
) -> list[Cell]:
    """Every cell of one provider: save and load, each size, concurrency 1 and 32."""
    cells: list[Cell] = []
    async with side_by_side(provider, emulator, "ops") as impls:
        for size_name, size in SIZES.items():
            snapshot = agentick_snapshot(size)
            ids = [f"s{i}" for i in range(ops[size_name])]
            for impl in impls.values():  # open clients and fill connection pools
                await run_batch(
                    lambda i, impl=impl, snap=snapshot: impl.save(i, snap), ids[:32], 32
                )
            for concurrency in CONCURRENCY:
                progress(f"{provider} {size_name} concurrency {concurrency}")
                save = Cell(provider, "save", size_name, concurrency)
                load = Cell(provider, "load", size_name, concurrency)
                for rnd in range(rounds):
                    order = ["store", "hand"] if rnd % 2 == 0 else ["hand", "store"]
                    for name in order:
                        impl = impls[name]
                        for cell, call in (
                            (save, lambda i, impl=impl, snap=snapshot: impl.save(i, snap)),
                            (load, lambda i, impl=impl: impl.load(i)),
                        ):
                            cpu_us, ops_s = await run_batch(call, ids, concurrency)
                            getattr(cell, f"{name}_cpu_us").append(cpu_us)
                            getattr(cell, f"{name}_ops_s").append(ops_s)
                cells += [save, load]
    return cells


def say(message: str) -> None:
    """Progress on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cloud_arguments(description: str) -> argparse.Namespace:
    """The command line every cloud benchmark takes: ``--quick``, ``--providers``,
    ``--bucket`` (the bucket or container used on every emulator)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller batches")
    parser.add_argument(
        "--providers", default="s3,gcs,azure", help="comma-separated subset of s3,gcs,azure"
    )
    parser.add_argument(
        "--bucket",
        default="sessionstore-bench",
        help="bucket/container to use on every emulator, created if missing (default:"
        " %(default)s, apart from the tests' bucket, whose leftovers slow fake-gcs-server)",
    )
    return parser.parse_args()


def prepare_emulators(providers: str, bucket: str) -> dict[str, Emulator]:
    """The emulators of ``providers`` (comma-separated) on ``bucket``, created if missing.

    Also points google-cloud-storage at fake-gcs-server (``STORAGE_EMULATOR_HOST``).
    """
    every = {
        "s3": localstack_s3_emulator(),
        "gcs": fake_gcs_emulator(),
        "azure": azurite_emulator(),
    }
    emulators = {p: dataclasses.replace(every[p], bucket=bucket) for p in providers.split(",")}
    os.environ.setdefault("STORAGE_EMULATOR_HOST", every["gcs"].endpoint)
    for provider, emulator in emulators.items():
        asyncio.run(ensure_bucket(provider, emulator))
    return emulators


async def ensure_bucket(provider: str, emulator: Emulator) -> None:
    """Create ``emulator.bucket`` if it does not exist (emulators only)."""
    if provider == "s3":
        import aioboto3

        async with aioboto3.Session().client("s3", **emulator.options) as s3:
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                await s3.create_bucket(Bucket=emulator.bucket)
    elif provider == "gcs":
        from google.api_core.exceptions import Conflict
        from google.cloud import storage

        client = storage.Client(project=emulator.options.get("project"))
        try:
            await asyncio.to_thread(client.create_bucket, emulator.bucket)
        except Conflict:
            pass
        finally:
            client.close()
    else:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob.aio import ContainerClient

        async with ContainerClient.from_connection_string(
            emulator.options["connection_string"], emulator.bucket
        ) as container:
            with contextlib.suppress(ResourceExistsError):
                await container.create_container()

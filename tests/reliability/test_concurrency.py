"""Concurrency on every store: 20 writers x 20 CAS increments, exact.

Racing creates (one winner) and reject_stale with shuffled ticks run for every store
in the contract suite (tests/contract.py: ConditionalContract, StaleContract).
"""

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from sessionstore import ConflictError, FileSessionStore, MemorySessionStore, ObjectSessionStore

WRITERS, INCREMENTS = 20, 20


# Not moto: its conditional PUT is a check then a write without a lock between them, so
# racing writers can both pass (tests/test_s3.py, TestS3StoreOnMoto); S3 runs on LocalStack.
@pytest.fixture(params=["memory", "file", "s3", "gcs", "azure"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectSessionStore:
    kind = request.param
    if kind == "memory":
        return MemorySessionStore()
    if kind == "file":
        return FileSessionStore(tmp_path)
    make: Any = request.getfixturevalue(f"make_{kind}_store")
    return make()  # type: ignore[no-any-return]


async def test_cas_counter_is_exact(store: ObjectSessionStore) -> None:
    await store.save("counter", {"tick": 0})
    conflicts = 0

    async def writer(seed: int) -> None:
        nonlocal conflicts
        rng = random.Random(seed)
        for _ in range(INCREMENTS):
            streak = 0  # conflicts in a row: back off exponentially, with full jitter
            while True:
                current = await store.load_versioned("counter")
                assert current is not None
                try:
                    await store.save(
                        "counter",
                        {"tick": current.snapshot["tick"] + 1},
                        if_version=current.version,
                    )
                    break
                except ConflictError:
                    conflicts += 1
                    streak += 1
                    await asyncio.sleep(rng.random() * min(0.5, 0.005 * 2**streak))

    await asyncio.gather(*(writer(i) for i in range(WRITERS)))
    final = await store.load("counter")
    print(f"{store!r}: {WRITERS * INCREMENTS} increments, {conflicts} conflicts retried")
    assert final == {"tick": WRITERS * INCREMENTS}

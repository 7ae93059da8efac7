"""A second process on a file store, for tests/reliability/test_file_processes.py.

Run as ``python -m tests.reliability.file_worker MODE ARGS`` from the repository root:

- ``increment URL N``: N ``if_version`` increments of the ``counter`` session's tick.
- ``resave ROOT N``: after a ``go`` line on stdin, save ``s0000``..``s{N-1}`` again,
  from the last to the first, each marked ``resaved``.
- ``purge ROOT SECONDS``: after a ``go`` line on stdin, ``purge_expired(SECONDS)``.
- ``write ROOT``: save checksummed snapshots of 0.5 KB to 1.5 MB under ``CRASH_IDS``,
  in a loop until killed, on two stores of ROOT (prefix ``""`` and ``p/``); prints
  ``ready`` after the first save.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from sessionstore import ConflictError, FileSessionStore, open_store

#: Short and long ids (the long ones are laid out in segment directories).
CRASH_IDS = ["a", "b/c", "ü" * 90, "x" * 600]
CRASH_PREFIXES = ["", "p/"]


def checksummed(tick: int, size: int, rng: random.Random) -> dict[str, Any]:
    """A snapshot carrying ``size`` bytes of payload and the payload's SHA-256."""
    payload = base64.b64encode(rng.randbytes(size * 3 // 4)).decode()
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return {"tick": tick, "payload": payload, "sha256": digest}


def is_whole(snapshot: dict[str, Any]) -> bool:
    """Whether a snapshot of :func:`checksummed` matches its checksum."""
    digest = hashlib.sha256(snapshot["payload"].encode()).hexdigest()
    return bool(digest == snapshot["sha256"])


async def increment(url: str, times: str) -> None:
    async with open_store(url) as store:
        for _ in range(int(times)):
            while True:
                current = await store.load_versioned("counter")
                assert current is not None
                tick = current.snapshot["tick"] + 1
                try:
                    await store.save("counter", {"tick": tick}, if_version=current.version)
                    break
                except ConflictError:
                    await asyncio.sleep(random.random() / 200)


async def resave(root: str, count: str) -> None:
    store = FileSessionStore(root)
    sys.stdin.readline()
    for i in reversed(range(int(count))):
        await store.save(f"s{i:04d}", {"tick": 2, "resaved": True})


async def purge(root: str, seconds: str) -> None:
    store = FileSessionStore(root)
    sys.stdin.readline()
    deleted = await store.purge_expired(timedelta(seconds=float(seconds)))
    print(deleted, flush=True)


async def write(root: str) -> None:
    rng = random.Random()
    stores = [FileSessionStore(root, prefix=prefix) for prefix in CRASH_PREFIXES]
    tick = 0
    while True:
        tick += 1
        store = rng.choice(stores)
        size = rng.choice([512, 64 * 1024, 1536 * 1024])
        await store.save(rng.choice(CRASH_IDS), checksummed(tick, size, rng))
        if tick == 1:
            print("ready", flush=True)


MODES: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
    "increment": increment,
    "resave": resave,
    "purge": purge,
    "write": write,
}

if __name__ == "__main__":
    asyncio.run(MODES[sys.argv[1]](*sys.argv[2:]))

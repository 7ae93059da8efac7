"""The fault scenario: one workload through the fault proxy, checked behind its back.

Shared by the pytest tests and by ``python -m tests.reliability.report``, which prints
the figures of docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessionstore import ConflictError, ObjectSessionStore, RetryPolicy, StaleSnapshotError
from sessionstore.testing import Emulator
from tests.reliability.faultproxy import FaultProxy

PATIENT = RetryPolicy(attempts=25, base_delay=0.005, max_delay=0.1, deadline=60)


def upstream_of(provider: str, emulator: Emulator) -> str:
    """The emulator's base URL, without Azurite's account path."""
    if provider == "azure":
        return emulator.endpoint.rsplit("/", 1)[0]
    return emulator.endpoint


def build_store(
    provider: str, emulator: Emulator, endpoint: str | None, prefix: str, **options: Any
) -> ObjectSessionStore:
    """A store of ``provider`` reaching its emulator at ``endpoint`` (None: directly)."""
    if provider == "s3":
        from sessionstore.stores.s3 import S3SessionStore

        opts = {**emulator.options, **options, "prefix": prefix}
        if endpoint:
            opts["endpoint_url"] = endpoint
        return S3SessionStore(emulator.bucket, **opts)
    if provider == "gcs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from sessionstore.stores.gcs import GCSSessionStore

        client = storage.Client(
            project="test",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint or emulator.endpoint},
        )
        client._bucket_metadata_cache = None
        return GCSSessionStore(emulator.bucket, client=client, prefix=prefix, **options)
    from sessionstore.stores.azure import AzureBlobSessionStore

    conn = emulator.options["connection_string"]
    if endpoint:
        conn = conn.replace(emulator.endpoint, f"{endpoint}/devstoreaccount1")
    return AzureBlobSessionStore(emulator.bucket, connection_string=conn, prefix=prefix, **options)


def _snap(session_id: str, tick: int, pad: int = 0) -> dict[str, Any]:
    return {
        "version": "1.0",
        "sessionId": session_id,
        "tick": tick,
        "timeline": [],
        "comState": {"pad": "p" * pad},
        "dataCache": {},
        "timestamp": tick,
    }


@dataclass
class Figures:
    """What one fault run did and found."""

    provider: str
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    operations: int = 0
    errors: list[str] = field(default_factory=list)
    lost: int = 0
    doubled: int = 0


async def run_faults(
    provider: str, emulator: Emulator, prefix: str, *, rate: float = 0.3, seed: int = 1
) -> Figures:
    """Save, load, CAS-increment, create and delete through faults; verify directly."""
    figures = Figures(provider)
    async with FaultProxy(upstream_of(provider, emulator), provider, rate, seed) as proxy:
        faulty = build_store(provider, emulator, proxy.url, prefix, retry=PATIENT)
        direct = build_store(provider, emulator, None, prefix)
        async with faulty, direct:
            ops = 0

            async def op(fn: Callable[[], Any]) -> Any:
                nonlocal ops
                ops += 1
                try:
                    return await fn()
                except Exception as exc:
                    figures.errors.append(f"{type(exc).__name__}: {exc}")
                    return None

            expected = {
                f"s{i:02d}": _snap(f"s{i:02d}", i, 50_000 if i % 4 == 0 else 10) for i in range(40)
            }
            sem = asyncio.Semaphore(8)

            async def save(session_id: str) -> None:
                async with sem:
                    await op(lambda: faulty.save(session_id, expected[session_id]))

            await asyncio.gather(*(save(s) for s in expected))
            for session_id, snap in expected.items():
                if await op(lambda s=session_id: faulty.load(s)) != snap:  # type: ignore[misc]
                    figures.lost += 1
                if await direct.load(session_id) != snap:
                    figures.lost += 1
                if await op(lambda s=session_id: faulty.has(s)) is not True:  # type: ignore[misc]
                    figures.lost += 1

            async def counter(name: str, increments: int) -> None:
                nonlocal ops
                await op(lambda: faulty.save(name, _snap(name, 0)))
                for _ in range(increments):
                    for _attempt in range(100):
                        current = await op(lambda: faulty.load_versioned(name))
                        if current is None:
                            continue
                        nxt = dict(current.snapshot, tick=current.snapshot["tick"] + 1)
                        try:
                            ops += 1
                            await faulty.save(name, nxt, if_version=current.version)
                            break
                        except ConflictError as exc:  # a single writer never conflicts
                            figures.errors.append(f"ConflictError: {exc}")

            await asyncio.gather(*(counter(f"counter-{c}", 15) for c in range(3)))
            for c in range(3):
                final = await direct.load(f"counter-{c}")
                tick = final["tick"] if final else -1
                if tick > 15:
                    figures.doubled += tick - 15
                elif tick < 15:
                    figures.lost += 15 - tick

            for i in range(15):
                created = _snap(f"new-{i}", i)
                await op(lambda c=created, i=i: faulty.save(f"new-{i}", c, if_absent=True))  # type: ignore[misc]
                if await direct.load(f"new-{i}") != created:
                    figures.lost += 1

            # reject_stale through the faults: one writer, shuffled ticks; a lost answer
            # to its conditional PUT must not turn into a refusal of its own tick.
            guarded = build_store(
                provider, emulator, proxy.url, prefix, retry=PATIENT, reject_stale=True
            )
            ticks = list(range(1, 13))
            random.Random(seed).shuffle(ticks)
            refused, highest = 0, 0
            async with guarded:
                for tick in ticks:
                    ops += 1
                    try:
                        await guarded.save("stale", _snap("stale", tick))
                    except StaleSnapshotError:
                        refused += 1
                    except Exception as exc:
                        figures.errors.append(f"{type(exc).__name__}: {exc}")
                    highest = max(highest, tick)
                    stored = await direct.load("stale")
                    if stored is None or stored["tick"] != highest:
                        figures.lost += 1
            if refused != sum(t < max(ticks[:i], default=0) for i, t in enumerate(ticks)):
                figures.errors.append(f"reject_stale refused {refused} saves, not the stale ones")

            for session_id in list(expected)[:20]:
                await op(lambda s=session_id: faulty.delete(s))  # type: ignore[misc]
                if await direct.has(session_id):
                    figures.errors.append(f"{session_id} survived its delete")
            listed = await op(faulty.list)
            if listed != await direct.list():
                figures.errors.append("list through faults differs from the direct list")
            figures.operations = ops
    figures.requests = proxy.requests
    figures.faults = dict(proxy.faults)
    return figures

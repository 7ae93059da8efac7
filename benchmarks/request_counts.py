"""Requests per operation, counted at each SDK's HTTP layer (not assumed).

S3: botocore's ``before-send`` event; GCS: a response hook on the client's
``requests`` session; Azure: the pipeline's ``raw_request_hook``. Each hook sees
every HTTP request the SDK sends, retries and redirects included.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.ops import purge
from benchmarks.snapshots import agentick_snapshot
from sessionstore.testing import Emulator


def _counted_store(provider: str, emulator: Emulator, prefix: str, **options: Any) -> Any:
    """A store whose every HTTP request increments the returned counter."""
    sent: list[str] = []
    if provider == "s3":
        from sessionstore.stores.s3 import S3SessionStore

        store: Any = S3SessionStore(emulator.bucket, prefix=prefix, **emulator.options, **options)
        store._count = sent
        return store
    if provider == "gcs":
        from google.cloud import storage

        from sessionstore.stores.gcs import GCSSessionStore

        client = storage.Client(project="test")
        client._bucket_metadata_cache = None  # as the store does for its own clients
        client._http.hooks["response"].append(lambda r, *a, **k: sent.append(r.request.method))
        store = GCSSessionStore(emulator.bucket, client=client, prefix=prefix, **options)
    else:
        from azure.storage.blob.aio import ContainerClient

        from sessionstore.stores.azure import AzureBlobSessionStore

        client = ContainerClient.from_connection_string(
            emulator.options["connection_string"],
            emulator.bucket,
            retry_total=0,
            max_single_get_size=64 * 1024 * 1024,
            raw_request_hook=lambda r: sent.append(r.http_request.method),
        )
        store = AzureBlobSessionStore(emulator.bucket, client=client, prefix=prefix, **options)
    store._count = sent
    return store


async def _hook_s3(store: Any) -> None:
    if store.provider == "s3":
        await store._ensure_open()
        store.client.meta.events.register(
            "before-send.s3", lambda request, **_: store._count.append(request.method)
        )


async def count(provider: str, emulator: Emulator, n_list: int = 2500) -> dict[str, int]:
    """Requests of save (also with reject_stale), load, has, delete and list(n)."""
    prefix = f"bench-req-{uuid.uuid4().hex}/"
    store = _counted_store(provider, emulator, prefix)
    stale = _counted_store(provider, emulator, prefix, reject_stale=True)
    for s in (store, stale):
        await _hook_s3(s)
    snap = agentick_snapshot(10_000)
    big = agentick_snapshot(5_000_000)
    result: dict[str, int] = {}

    async def measure(name: str, s: Any, op: Callable[[], Any]) -> Any:
        before = len(s._count)
        value = await op()
        result[name] = len(s._count) - before
        return value

    try:
        await measure("save", store, lambda: store.save("a", snap))
        await measure("save (reject_stale, new)", stale, lambda: stale.save("b", snap))
        await measure("save (reject_stale)", stale, lambda: stale.save("b", {**snap, "tick": 99}))
        await measure(
            "save (reject_stale, object written without tick metadata)",
            stale,
            lambda: stale.save("a", {**snap, "tick": 99}),
        )
        await measure("load", store, lambda: store.load("a"))
        await measure("has", store, lambda: store.has("a"))
        await measure("save (5 MB)", store, lambda: store.save("big", big))
        await measure("load (5 MB)", store, lambda: store.load("big"))
        await measure("delete", store, lambda: store.delete("a"))
        await measure("load (absent)", store, lambda: store.load("a"))
        await measure("has (absent)", store, lambda: store.has("a"))
        await measure("delete (absent)", store, lambda: store.delete("a"))
        sem = asyncio.Semaphore(32)

        async def put(i: int) -> None:
            async with sem:
                await store.save(f"id-{i:05d}", {"tick": i})

        await asyncio.gather(*(put(i) for i in range(n_list)))
        await store.delete("big")
        await store.delete("b")
        ids = await measure(f"list ({n_list} sessions)", store, store.list)
        if len(ids) != n_list:
            raise AssertionError(f"{provider}: list() found {len(ids)} of {n_list} sessions")
    finally:
        for s in (store, stale):
            await s.aclose()
            client = s.client
            if provider == "azure" and client is not None:
                await client.close()
            if provider == "gcs" and client is not None:
                client.close()
        await purge(prefix, provider, emulator)
    return result

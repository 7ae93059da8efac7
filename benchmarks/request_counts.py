"""Requests per operation, counted at each SDK's HTTP layer (not assumed).

S3: botocore's ``before-send`` event on the client the store builds; GCS: a
response hook on the ``requests`` session of the client the store builds; Azure:
the pipeline's ``raw_request_hook`` on a client configured as the store configures
its own (retries off, one GET up to 64 MiB). Each hook sees every HTTP request the
SDK sends, retries and redirects included.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.ops import purge
from benchmarks.snapshots import agentick_snapshot
from sessionstore.testing import Emulator, emulator_store


def _counted_store(provider: str, emulator: Emulator, prefix: str, **options: Any) -> Any:
    """A store and, in ``store._count``, the list of the HTTP requests it sends."""
    sent: list[str] = []
    store: Any
    if provider == "azure":
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
    else:
        store = emulator_store(provider, emulator, prefix=prefix, **options)
    store._count = sent
    return store


async def _hook_own_client(store: Any) -> None:
    """Hook the client the S3 or GCS store builds itself (Azure's is injected)."""
    await store._ensure_open()
    sent = store._count
    if store.provider == "s3":
        store.client.meta.events.register(
            "before-send.s3", lambda request, **_: sent.append(request.method)
        )
    elif store.provider == "gcs":
        store.client._http.hooks["response"].append(
            lambda response, *args, **kwargs: sent.append(response.request.method)
        )


async def count(provider: str, emulator: Emulator, n_list: int = 2500) -> dict[str, int]:
    """Requests of save (also with reject_stale), load, has, delete and list(n)."""
    prefix = f"bench-req-{uuid.uuid4().hex}/"
    store = _counted_store(provider, emulator, prefix)
    stale = _counted_store(provider, emulator, prefix, reject_stale=True)
    for s in (store, stale):
        await _hook_own_client(s)
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
        await purge(prefix, provider, emulator)
    return result

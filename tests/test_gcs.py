"""GCSSessionStore on fake-gcs-server: the contract, plus what only GCS has."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from sessionstore import ObjectSessionStore, StoreAccessError, open_store
from sessionstore.stores.gcs import GCSSessionStore
from sessionstore.testing import Emulator
from tests.contract import MakeStore, RequestCountContract, StoreContract, snapshot


class TestGCSStore(StoreContract, RequestCountContract):
    # fake-gcs-server does not enforce ifGenerationMatch on deletes (DESIGN §7).
    conditional_deletes = "ignored"

    @pytest.fixture
    def make_store(self, make_gcs_store: MakeStore) -> MakeStore:
        return make_gcs_store

    @pytest.fixture
    def counted_store(self, make_gcs_store: MakeStore) -> Any:
        async def make(**options: Any) -> Any:
            store = make_gcs_store(**options)
            return store, await count_requests(store)

        return make


async def count_requests(store: ObjectSessionStore) -> Callable[[], list[str]]:
    """Record every HTTP request of the store's client (a requests response hook)."""
    await store._ensure_open()
    sent: list[str] = []
    store.client._http.hooks["response"].append(  # type: ignore[attr-defined]
        lambda r, *a, **k: sent.append(f"{r.request.method} {r.request.url}")
    )
    return lambda: sent


async def test_event_loop_stays_responsive(make_gcs_store: MakeStore) -> None:
    store = make_gcs_store()
    payload = snapshot(pad="x" * 1_000_000)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - started - 0.01)

    tick = asyncio.create_task(ticker())
    started = time.monotonic()
    await asyncio.gather(*(store.save(f"s{i}", payload) for i in range(64)))
    total = time.monotonic() - started
    done.set()
    await tick
    print(f"64 saves in {total:.2f}s, max loop lag {max(lags) * 1000:.1f} ms")
    assert max(lags) < 0.2 and max(lags) < total / 2


async def test_missing_bucket_is_an_access_error_at_once(fake_gcs: Emulator) -> None:
    async with GCSSessionStore("no-such-bucket-sessionstore", **fake_gcs.options) as store:
        sent = await count_requests(store)
        started = time.monotonic()
        with pytest.raises(StoreAccessError, match="no-such-bucket-sessionstore"):
            await store.save("s", snapshot())
        assert time.monotonic() - started < 2 and len(sent()) == 1
        with pytest.raises(StoreAccessError):
            await store.list()


async def test_kms_key_name_reaches_the_upload(make_gcs_store: MakeStore) -> None:
    key = "projects/p/locations/l/keyRings/r/cryptoKeys/k"
    store = make_gcs_store(kms_key_name=key)
    sent = await count_requests(store)
    await store.save("s", snapshot())
    assert "kmsKeyName=projects%2Fp%2Flocations" in sent()[0]


async def test_injected_client_is_not_closed(fake_gcs: Emulator, unique_prefix: str) -> None:
    from google.cloud import storage

    client = storage.Client(project="test")
    async with GCSSessionStore(fake_gcs.bucket, client=client, prefix=unique_prefix) as store:
        await store.save("x", snapshot())
    blob = client.bucket(fake_gcs.bucket).blob(unique_prefix + "x.json")
    assert blob.exists()
    blob.delete()


async def test_open_store_url(fake_gcs: Emulator, unique_prefix: str) -> None:
    store = open_store(f"gs://{fake_gcs.bucket}/{unique_prefix}?project=test&max_workers=4")
    assert isinstance(store, GCSSessionStore)
    assert store.prefix == unique_prefix and store.max_workers == 4
    async with store:
        await store.save("u", snapshot())
        assert await store.load("u") == snapshot()
        await store.delete("u")


async def test_conditional_delete_sends_the_generation(make_gcs_store: MakeStore) -> None:
    """fake-gcs-server ignores the condition on deletes; check that we send it."""
    store = make_gcs_store()
    version = await store.save("s", snapshot())
    sent = await count_requests(store)
    await store.delete("s", if_version=version)
    assert sent()[0].startswith("DELETE ") and f"ifGenerationMatch={version}" in sent()[0]

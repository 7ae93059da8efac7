"""GCSSessionStore on fake-gcs-server: the contract, plus what only GCS has."""

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc

from sessionstore import ObjectSessionStore, StoreAccessError, open_store
from sessionstore.provider import (
    UNCONDITIONAL,
    AccessDenied,
    NotFound,
    PreconditionFailed,
    Transient,
)
from sessionstore.stores.gcs import GCSSessionStore
from sessionstore.testing import Emulator
from tests.contract import (
    AsyncStoreContract,
    MakeStore,
    RequestCountContract,
    SyncStoreContract,
    cloud_url,
    snapshot,
)


async def count_requests(store: ObjectSessionStore) -> Callable[[], list[str]]:
    """Record every HTTP request of the store's client (a requests response hook)."""
    await store._ensure_open()
    sent: list[str] = []
    store.client._http.hooks["response"].append(  # type: ignore[attr-defined]
        lambda r, *a, **k: sent.append(f"{r.request.method} {r.request.url}")
    )
    return lambda: sent


@pytest.fixture
def store_url(fake_gcs: Emulator, unique_prefix: str) -> tuple[str, dict[str, str]]:
    """The URL (and environment) of the contract's subprocess checks."""
    return cloud_url("gcs", fake_gcs, unique_prefix)


class TestGCSStore(AsyncStoreContract, RequestCountContract):
    # fake-gcs-server does not enforce ifGenerationMatch on deletes
    # (docs/DESIGN.md, "The local cloud").
    conditional_deletes = "ignored"

    @pytest.fixture
    def make_store(self, make_gcs_store: MakeStore) -> MakeStore:
        return make_gcs_store

    count_requests = staticmethod(count_requests)


class TestGCSSyncStore(SyncStoreContract):
    conditional_deletes = "ignored"

    @pytest.fixture
    def make_async_store(self, make_gcs_store: MakeStore) -> MakeStore:
        return make_gcs_store


SIDE_BY_SIDE = 4  # requests the pool must have in flight at once (its default size is 32)
HANG = 30.0  # seconds: only a broken store waits this long (a deadlock guard, not a bound)


async def test_event_loop_stays_responsive(make_gcs_store: MakeStore) -> None:
    # What the store does, with no wall-clock bound: while each request is in flight (in
    # the SDK's response hook), the event loop runs a callback the request's thread hands
    # it, which a loop stalled on the request never would; and the first requests stay in
    # flight until SIDE_BY_SIDE are, which requests sent one at a time never are.
    store = make_gcs_store()
    await store._ensure_open()
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    senders: set[int] = set()
    stalls: list[str] = []
    together = threading.Condition()
    in_flight = peak = 0

    def answered(response: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal in_flight, peak
        senders.add(threading.get_ident())
        if threading.get_ident() == loop_thread or stalls:
            return  # sent from the loop itself (asserted below), or already failed
        ran = threading.Event()
        loop.call_soon_threadsafe(ran.set)
        if not ran.wait(HANG):
            stalls.append("the event loop ran nothing while a request was in flight")
        with together:
            in_flight += 1
            peak = max(peak, in_flight)
            together.notify_all()
            if not together.wait_for(lambda: peak >= SIDE_BY_SIDE or bool(stalls), HANG):
                stalls.append(f"never {SIDE_BY_SIDE} requests in flight at once (peak {peak})")
            in_flight -= 1

    store.client._http.hooks["response"].append(answered)  # type: ignore[attr-defined]
    payload = snapshot(pad="x" * 100_000)
    await asyncio.gather(*(store.save(f"s{i}", payload) for i in range(64)))
    # No request was sent from the event loop's thread, and the pool's threads sent
    # them side by side while the loop kept running.
    assert loop_thread not in senders
    assert stalls == []
    assert peak >= SIDE_BY_SIDE and len(senders) >= SIDE_BY_SIDE


async def test_missing_bucket_is_an_access_error_at_once(
    fake_gcs: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with GCSSessionStore("no-such-bucket-sessionstore", **fake_gcs.options) as store:
        sent = await count_requests(store)
        caplog.set_level(logging.WARNING, logger="sessionstore")
        with pytest.raises(StoreAccessError, match="no-such-bucket-sessionstore"):
            await store.save("s", snapshot())
        assert len(sent()) == 1  # at once: one request, and no retry waited for
        assert "retrying" not in caplog.text
        with pytest.raises(StoreAccessError, match=r"HTTP 404: Not Found\): gs://no-such"):
            await store.list()
        with pytest.raises(Exception) as raised:  # the upload's own error, unmapped
            await store._put("k", b"{}", content_type="a/b", metadata={}, condition=UNCONDITIONAL)
        assert store._error_detail(raised.value) == "NotFound, HTTP 404: Not Found"


def gcs_error(status: int, body: str, method: str = "GET") -> gexc.GoogleAPICallError:
    """The exception the SDK raises for a response of real GCS (its own conversion)."""
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    url = "https://storage.googleapis.com/storage/v1/b/bkt/o/sessions%2Fs.json"
    response.request = requests.Request(method, url).prepare()
    return gexc.from_http_response(response)  # type: ignore[no-untyped-call,no-any-return]


def test_a_404_says_whether_the_object_or_the_bucket_is_missing() -> None:
    """Real GCS tells them apart by message (fake-gcs-server says "Not Found" for both)."""
    store = GCSSessionStore("bkt", project="test")
    no_object = gcs_error(404, '{"error": {"code": 404, "message": "No such object: bkt/k"}}')
    no_bucket = gcs_error(404, "The specified bucket does not exist.")
    denied = gcs_error(403, '{"error": {"code": 403, "message": "a@b does not have access"}}')
    assert store._classify(no_object) is NotFound
    assert store._classify(no_bucket) is AccessDenied
    assert store._classify(denied) is AccessDenied
    assert store._classify(gcs_error(412, "Precondition Failed")) is PreconditionFailed
    for status in (408, 429, 500, 502, 503, 504):
        assert store._classify(gcs_error(status, "try again")) is Transient
    assert store._error_detail(no_object) == "NotFound, HTTP 404: No such object: bkt/k"
    assert store._error_detail(no_bucket).endswith(": The specified bucket does not exist.")


async def test_no_credentials_is_an_access_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    store = GCSSessionStore("bkt", project="test")
    with pytest.raises(StoreAccessError, match="DefaultCredentialsError"):
        await store.load("s")
    await store.aclose()
    assert store._executor is None  # aclose() ended the thread pool the open used


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

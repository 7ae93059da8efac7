"""AzureBlobSessionStore on Azurite: the contract, plus what only Azure has."""

import asyncio
import contextlib
import gc
import importlib.util
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from sessionstore import (
    ObjectSessionStore,
    RetryPolicy,
    SessionStoreError,
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
    open_store,
)
from sessionstore.stores.azure import AzureBlobSessionStore
from sessionstore.testing import AZURITE_ACCOUNT, AZURITE_KEY, Emulator
from tests.contract import (
    AsyncStoreContract,
    MakeStore,
    RequestCountContract,
    SyncStoreContract,
    big_snapshot,
    cloud_url,
    snapshot,
)
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.scenario import upstream_of


async def count_requests(store: ObjectSessionStore) -> Callable[[], list[str]]:
    """Record every HTTP request of the client the store built (its request hook)."""
    await store._ensure_open()
    sent: list[str] = []
    for runner in store.client._pipeline._impl_policies:  # type: ignore[attr-defined]
        policy = getattr(runner, "_policy", runner)
        if type(policy).__name__ == "StorageRequestHook":
            policy._request_callback = lambda r: sent.append(r.http_request.method)
    return lambda: sent


@pytest.fixture
def store_url(azurite: Emulator, unique_prefix: str) -> tuple[str, dict[str, str]]:
    """The URL (and environment) of the contract's subprocess checks."""
    return cloud_url("azure", azurite, unique_prefix)


class TestAzureStore(AsyncStoreContract, RequestCountContract):
    @pytest.fixture
    def make_store(self, make_azure_store: MakeStore) -> MakeStore:
        return make_azure_store

    count_requests = staticmethod(count_requests)


class TestAzureSyncStore(SyncStoreContract):
    async_stacks_loaded = "aiohttp"  # azure-storage-blob's sync package imports it itself

    @pytest.fixture
    def make_async_store(self, make_azure_store: MakeStore) -> MakeStore:
        return make_azure_store


Counted = tuple[AzureBlobSessionStore, Callable[[], list[str]]]


@pytest.fixture
async def counted(azurite: Emulator, unique_prefix: str) -> AsyncIterator[Callable[..., Counted]]:
    """Stores on an injected client whose every request is recorded."""
    clients: list[ContainerClient] = []

    def make(container: str = azurite.bucket, **options: Any) -> Counted:
        sent: list[str] = []
        client = ContainerClient.from_connection_string(
            azurite.options["connection_string"],
            container,
            retry_total=0,
            raw_request_hook=lambda r: sent.append(r.http_request.method),
        )
        clients.append(client)
        store = AzureBlobSessionStore(container, client=client, prefix=unique_prefix, **options)
        return store, lambda: sent

    yield make
    sem = asyncio.Semaphore(32)

    async def delete(client: ContainerClient, name: str) -> None:
        async with sem:
            await client.delete_blob(name)

    for client in clients:
        async with client:
            if await client.exists():
                names = [n async for n in client.list_blob_names(name_starts_with=unique_prefix)]
                await asyncio.gather(*(delete(client, name) for name in names))


@contextlib.asynccontextmanager
async def proxied(azurite: Emulator) -> AsyncIterator[tuple[FaultProxy, str]]:
    """A recording proxy in front of Azurite, and the connection string through it."""
    async with FaultProxy(upstream_of("azure", azurite), "azure") as proxy:
        conn = azurite.options["connection_string"].replace(
            azurite.endpoint, f"{proxy.url}/{AZURITE_ACCOUNT}"
        )
        yield proxy, conn


async def test_a_store_built_client_sends_one_request_per_operation_for_33_mib(
    azurite: Emulator, unique_prefix: str
) -> None:
    big = big_snapshot(33)  # over the SDK's default max_single_get_size (32 MiB)
    async with (
        proxied(azurite) as (proxy, conn),
        AzureBlobSessionStore(
            azurite.bucket, connection_string=conn, prefix=unique_prefix
        ) as store,
    ):
        await store.save("big", big)
        assert proxy.log == ["PUT"]
        assert await store.load("big") == big
        assert proxy.log == ["PUT", "GET"]
        await store.delete("big")
        assert proxy.log == ["PUT", "GET", "DELETE"]


async def test_a_body_cut_mid_read_is_transient(azurite: Emulator, unique_prefix: str) -> None:
    # The SDK's downloader re-sends a GET whose body breaks off (3 tries, 1 s apart; no
    # setting turns that off). What escapes it is retried by the store's policy.
    async with proxied(azurite) as (proxy, conn):
        proxy.script = [None] + ["cut"] * 3  # the save, then the three GETs of one load
        retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01)
        options: dict[str, Any] = {"connection_string": conn}
        async with AzureBlobSessionStore(
            azurite.bucket, prefix=unique_prefix, retry=retry, **options
        ) as store:
            await store.save("s", snapshot())
            assert await store.load("s") == snapshot()
            assert proxy.log.count("GET") == 4 and proxy.faults["cut"] == 3
            proxy.script = ["cut"] * 3
            single = AzureBlobSessionStore(
                azurite.bucket, prefix=unique_prefix, retry=RetryPolicy(attempts=1), **options
            )
            async with single:
                with pytest.raises(StoreUnavailableError, match="no complete response"):
                    await single.load("s")
            await store.delete("s")


async def test_missing_container_is_an_access_error_at_once(
    counted: Callable[..., Counted], caplog: pytest.LogCaptureFixture
) -> None:
    store, sent = counted("no-such-container-sessionstore")
    caplog.set_level(logging.WARNING, logger="sessionstore")
    with pytest.raises(StoreAccessError, match="ContainerNotFound, HTTP 404"):
        await store.save("s", snapshot())
    assert sent() == ["PUT"]  # at once: one request, and no retry waited for
    assert "retrying" not in caplog.text
    for op in (store.load("s"), store.has("s"), store.list(), store.delete("s")):
        with pytest.raises(StoreAccessError):
            await op
    assert len(sent()) == 5


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)


async def test_wrong_key_is_a_clear_error_without_the_key(
    azurite: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "V1JPTkctS0VZLVNFTlRJTkVM" * 3 + "AA=="
    conn = azurite.options["connection_string"].replace(AZURITE_KEY, wrong)
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's too
    async with AzureBlobSessionStore(azurite.bucket, connection_string=conn) as store:
        with pytest.raises(StoreAccessError, match="AuthorizationFailure, HTTP 403") as info:
            await store.save("s", snapshot())
    text = f"{info.value} {info.value!r} {store!r} {_logged(caplog)}"
    assert wrong[:12] not in text and wrong[-16:] not in text


def _sas(azurite: Emulator) -> str:
    return generate_container_sas(
        AZURITE_ACCOUNT,
        azurite.bucket,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_sas_tokens_work_and_never_appear(
    azurite: Emulator, unique_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    sas = _sas(azurite)
    for options in (
        {"account_url": f"{azurite.endpoint}?{sas}"},
        {"account_url": azurite.endpoint, "credential": sas},
    ):
        async with AzureBlobSessionStore(azurite.bucket, prefix=unique_prefix, **options) as store:
            await store.save("k", snapshot())
            assert await store.load("k") == snapshot() and await store.list() == ["k"]
            await store.delete("k")
        assert store.account_url == azurite.endpoint
    caplog.set_level(logging.DEBUG)
    bad = "sv=2024-01-01&sp=rw&se=2000-01-01&sig=SENTINEL%2Fsignature%3D"
    store = AzureBlobSessionStore(azurite.bucket, account_url=f"{azurite.endpoint}?{bad}")
    async with store:
        with pytest.raises(StoreAccessError) as info:
            await store.save("s", snapshot())
    text = f"{info.value} {info.value!r} {store!r} {store.account_url} {_logged(caplog)}"
    assert "SENTINEL" not in text and dict(p.split("=") for p in sas.split("&"))["sig"] not in text


async def test_encryption_scope_reaches_the_request(azurite: Emulator, unique_prefix: str) -> None:
    headers: list[dict[str, str]] = []
    client = ContainerClient.from_connection_string(
        azurite.options["connection_string"],
        azurite.bucket,
        raw_request_hook=lambda r: headers.append(dict(r.http_request.headers)),
    )
    async with client:
        store = AzureBlobSessionStore(
            azurite.bucket, client=client, prefix=unique_prefix, encryption_scope="myscope"
        )
        with contextlib.suppress(SessionStoreError):  # Azurite may refuse an unknown scope
            await store.save("s", snapshot())
        assert headers[0].get("x-ms-encryption-scope") == "myscope"
        async for name in client.list_blob_names(name_starts_with=unique_prefix):
            await client.delete_blob(name)


async def test_injected_client_is_not_closed(counted: Callable[..., Counted]) -> None:
    store, _ = counted()
    async with store:
        await store.save("x", snapshot())
    assert store.client is not None
    await store.client.get_blob_client(store.prefix + "x.json").get_blob_properties()


async def test_injected_service_client_is_used_and_not_closed(
    azurite: Emulator, unique_prefix: str
) -> None:
    service = BlobServiceClient.from_connection_string(
        azurite.options["connection_string"], retry_total=0
    )
    async with service:
        store = AzureBlobSessionStore(azurite.bucket, client=service, prefix=unique_prefix)
        async with store:
            await store.save("x", snapshot())
            assert await store.load("x") == snapshot()
        container = service.get_container_client(azurite.bucket)
        await container.get_blob_client(f"{unique_prefix}x.json").get_blob_properties()
        async with store:  # reopens on the same injected client
            await store.delete("x")


@pytest.mark.parametrize("kind", ["dict", "named-key"])
async def test_account_url_with_key_credential(
    azurite: Emulator, unique_prefix: str, kind: str
) -> None:
    credential: Any = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    if kind == "named-key":
        credential = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
    store = AzureBlobSessionStore(
        azurite.bucket, account_url=azurite.endpoint, credential=credential, prefix=unique_prefix
    )
    async with store:
        await store.save("k", snapshot())
        assert await store.load("k") == snapshot()
        await store.delete("k")


@pytest.mark.parametrize("scheme", ["az", "azure"])
async def test_open_store_url(
    azurite: Emulator, unique_prefix: str, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.options["connection_string"])
    store = open_store(f"{scheme}://{azurite.bucket}/{unique_prefix}")
    assert isinstance(store, AzureBlobSessionStore) and store.prefix == unique_prefix
    async with store:
        await store.save("u", snapshot())
        assert await store.load("u") == snapshot()
        await store.delete("u")


async def test_open_store_url_with_account_url(azurite: Emulator, unique_prefix: str) -> None:
    url = f"az://{azurite.bucket}/{unique_prefix}?account_url={azurite.endpoint}&ttl=60"
    async with open_store(url, credential=_sas(azurite)) as store:
        assert isinstance(store, AzureBlobSessionStore) and store.account_url == azurite.endpoint
        await store.save("u", snapshot())
        assert await store.list() == ["u"]
        await store.delete("u")


async def test_no_unclosed_client_session(azurite: Emulator, unique_prefix: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with AzureBlobSessionStore(
            azurite.bucket, prefix=unique_prefix, **azurite.options
        ) as store:
            await store.save("w", snapshot())
            assert await store.load("w") == snapshot()
            await store.delete("w")
        del store
        gc.collect()
    assert [str(w.message) for w in caught if "nclosed" in str(w.message)] == []


def test_no_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(StoreConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        AzureBlobSessionStore("c")


class _SyncTokenCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 0)


async def test_bad_options_are_config_errors(azurite: Emulator) -> None:
    conn = azurite.options["connection_string"]
    with pytest.raises(StoreConfigError, match="not both"):
        AzureBlobSessionStore("c", connection_string=conn, account_url=azurite.endpoint)
    with pytest.raises(StoreConfigError, match="azure.identity.aio"):
        AzureBlobSessionStore("c", account_url=azurite.endpoint, credential=_SyncTokenCredential())
    async with ContainerClient.from_connection_string(conn, "other") as other:
        with pytest.raises(StoreConfigError, match="'other'"):
            AzureBlobSessionStore("c", client=other)
    with pytest.raises(StoreConfigError, match="container"):
        AzureBlobSessionStore("", connection_string=conn)
    store = AzureBlobSessionStore("c", connection_string="AccountKey=c2VjcmV0;nonsense")
    with pytest.raises(StoreConfigError, match="refused") as info:
        await store.__aenter__()
    assert "c2VjcmV0" not in str(info.value)


async def test_account_url_alone_uses_default_azure_credential(azurite: Emulator) -> None:
    if importlib.util.find_spec("azure.identity") is None:
        with pytest.raises(StoreConfigError, match=r"sessionstore\[azure-identity\]"):
            AzureBlobSessionStore(azurite.bucket, account_url=azurite.endpoint)
        return
    store = AzureBlobSessionStore(azurite.bucket, account_url=azurite.endpoint)
    with pytest.raises(StoreConfigError, match="HTTPS"):  # a token never goes over http
        async with store:
            pass

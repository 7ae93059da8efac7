"""AzureBlobSessionStore on Azurite: the contract, plus what only Azure has."""

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient

from sessionstore import SessionStoreError, StoreAccessError, StoreConfigError, open_store
from sessionstore.stores.azure import AzureBlobSessionStore
from sessionstore.testing import AZURITE_KEY, Emulator
from tests.contract import MakeStore, RequestCountContract, StoreContract, snapshot


class TestAzureStore(StoreContract, RequestCountContract):
    @pytest.fixture
    def make_store(self, make_azure_store: MakeStore) -> MakeStore:
        return make_azure_store

    @pytest.fixture
    def counted_store(self, counted: Callable[..., "Counted"]) -> Any:
        async def make(**options: Any) -> Any:
            return counted(**options)

        return make


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
            max_single_get_size=64 * 1024 * 1024,
            raw_request_hook=lambda r: sent.append(r.http_request.method),
        )
        clients.append(client)
        store = AzureBlobSessionStore(container, client=client, prefix=unique_prefix, **options)
        return store, lambda: sent

    yield make
    for client in clients:
        async with client:
            if await client.exists():
                async for name in client.list_blob_names(name_starts_with=unique_prefix):
                    await client.delete_blob(name)


async def test_missing_container_is_an_access_error_at_once(
    counted: Callable[..., Counted],
) -> None:
    store, sent = counted("no-such-container-sessionstore")
    started = time.monotonic()
    with pytest.raises(StoreAccessError, match="ContainerNotFound"):
        await store.save("s", snapshot())
    assert time.monotonic() - started < 2 and sent() == ["PUT"]
    for op in (store.load("s"), store.has("s"), store.list()):
        with pytest.raises(StoreAccessError):
            await op


async def test_wrong_key_is_a_clear_error_without_the_key(
    azurite: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "V1JPTkctS0VZLVNFTlRJTkVM" * 3 + "AA=="
    conn = azurite.options["connection_string"].replace(AZURITE_KEY, wrong)
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    async with AzureBlobSessionStore(azurite.bucket, connection_string=conn) as store:
        with pytest.raises(StoreAccessError) as info:
            await store.save("s", snapshot())
        text = f"{info.value} {info.value!r} {store!r} {caplog.text}"
        assert "AuthorizationFailure" in str(info.value) or "403" in str(info.value)
        assert wrong not in text and wrong[:12] not in text


async def test_sas_token_never_appears(azurite: Emulator) -> None:
    sas = "sv=2024-01-01&sig=SENTINEL%2Fsignature&se=2000-01-01&sp=rw"
    store = AzureBlobSessionStore(
        azurite.bucket, account_url=f"{azurite.endpoint}?{sas}", prefix="sas/"
    )
    async with store:
        with pytest.raises(StoreAccessError) as info:
            await store.save("s", snapshot())
    assert "SENTINEL" not in f"{info.value} {info.value!r} {store!r}"


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


async def test_account_url_with_key_credential(azurite: Emulator, unique_prefix: str) -> None:
    store = AzureBlobSessionStore(
        azurite.bucket,
        account_url=azurite.endpoint,
        credential={"account_name": "devstoreaccount1", "account_key": AZURITE_KEY},
        prefix=unique_prefix,
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


def test_no_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(StoreConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        AzureBlobSessionStore("c")

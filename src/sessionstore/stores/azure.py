"""AzureBlobSessionStore: sessions as block blobs in an Azure Storage container.

Built on ``azure.storage.blob.aio``. One ``ContainerClient`` is built on first use and
reused; ``aclose()`` closes it (an injected client is never closed). Calls through the
sync API use the SDK's synchronous ``ContainerClient`` instead (``azure.storage.blob``,
without the aio stack), built the same way. The SDK's retries
are off (``retry_total=0``; its default waits ~15 s before a first retry): the base
class's tenacity loop is the one retry owner. Azure metadata names must be C#
identifiers, so the base's ``sessionstore-*`` names are stored as ``sessionstore_*``.

One SDK retry cannot be switched off: ``download_blob`` re-sends a GET whose body
breaks off mid-read (3 tries, 1 s apart). What escapes it is classified transient.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Unpack, cast
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobProperties, ContentSettings
from azure.storage.blob import ContainerClient as SyncContainerClient

from sessionstore.clients import ClientStore
from sessionstore.errors import StoreConfigError
from sessionstore.provider import (
    AccessDenied,
    Capabilities,
    Condition,
    Failed,
    Fault,
    ListedObject,
    NotFound,
    ObjectInfo,
    Page,
    PreconditionFailed,
    StoredObject,
    StoreOptions,
    Transient,
    http_fault,
    redact,
    sync_call,
)
from sessionstore.urlparams import UrlParams, text

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

# The aio client is imported when the first async call builds it (a process on the
# sync API never loads it); its absence is an install problem, told at once.
if importlib.util.find_spec("azure.storage.blob.aio") is None:
    raise ModuleNotFoundError(
        "No module named 'azure.storage.blob.aio'", name="azure.storage.blob.aio"
    )

__all__ = ["AzureBlobSessionStore"]

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
#: Azure error codes whose meaning the HTTP status alone does not give.
_CODES: dict[str, type[Fault]] = {
    **dict.fromkeys(
        ("ContainerNotFound", "AuthenticationFailed", "AuthorizationFailure", "AccountIsDisabled"),
        AccessDenied,
    ),
    **dict.fromkeys(
        ("ConditionNotMet", "BlobAlreadyExists", "TargetConditionNotMet"), PreconditionFailed
    ),
}
_BROKEN_READ = (IncompleteReadError, ServiceResponseError, ServiceRequestError, ConnectionError)
_SINGLE_PUT_FLOOR = 64 * 1024 * 1024
_META_PREFIX = "sessionstore_"
_IDENTITY_HINT = "pip install 'sessionstore[azure-identity]'"


def _code(exc: HttpResponseError) -> str:
    """The service's error code as a plain string (the SDK gives an enum or a str)."""
    code: Any = getattr(exc, "error_code", None)
    if not code:
        code = (getattr(exc.response, "headers", None) or {}).get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")


def _inner(exc: HttpResponseError) -> BaseException | None:
    """The failure an SDK wrapper without a response carries (a broken body read)."""
    return exc.inner_exception or exc.__cause__


def _if_version(version: str | None) -> dict[str, Any]:
    """The SDK keywords that make a request conditional on the blob's etag."""
    if version is None:
        return {}
    return {"etag": version, "match_condition": MatchConditions.IfNotModified}


def _etag(value: Any) -> str:
    """The version token: the ETag as the service sends it, in quotes.

    Uploads and downloads give ``"0x8DE…"``, listings ``0x8DE…``: one format for all,
    so what ``iter_info`` yields equals what ``save`` returned.
    """
    etag = str(value)
    return etag if etag.startswith('"') else f'"{etag}"'


def _to_azure(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k.replace("-", "_"): v for k, v in metadata.items()}


def _from_azure(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {
        k.replace("_", "-") if k.lower().startswith(_META_PREFIX) else k: v
        for k, v in (metadata or {}).items()
    }


def _check_options(
    container: Any, client: Any, connection_string: Any, account_url: Any, credential: Any
) -> None:
    if not isinstance(container, str) or not container:
        raise StoreConfigError(f"container must be a non-empty str, not {container!r}")
    if client is not None:
        _check_client(client, container)
    if connection_string and account_url:
        raise StoreConfigError("pass connection_string or account_url, not both")
    get_token = getattr(credential, "get_token", None)
    if callable(get_token) and not inspect.iscoroutinefunction(get_token):
        raise StoreConfigError(
            "credential is a synchronous token credential; the store uses the aio SDK:"
            " pass its azure.identity.aio counterpart"
        )


def _check_client(client: Any, container: str) -> None:
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

    if not isinstance(client, ContainerClient | BlobServiceClient):
        raise StoreConfigError(
            "client must be an azure.storage.blob.aio ContainerClient or BlobServiceClient,"
            f" not {type(client).__name__}"
        )
    if isinstance(client, ContainerClient) and client.container_name != container:
        raise StoreConfigError(
            f"the injected client is for container {client.container_name!r}, not {container!r}"
        )


class AzureBlobSessionStore(ClientStore):
    """Sessions in an Azure Blob Storage container (or Azurite).

    Credentials, in order: ``client``; ``connection_string``; ``account_url`` with
    ``credential`` (an account key, ``{"account_name", "account_key"}``, an
    ``AzureNamedKeyCredential``, a SAS token or ``AzureSasCredential``, or an async
    ``azure.identity.aio`` credential), or with a SAS in its query; ``account_url``
    alone uses ``azure.identity.aio.DefaultAzureCredential`` (extra
    ``azure-identity``), which the store closes with itself; else
    ``$AZURE_STORAGE_CONNECTION_STRING``.

    A store-built client reads and writes any snapshot up to ``max_snapshot_bytes`` in
    one request; an injected client keeps its own ``max_single_get_size`` (32 MiB by
    default) and ``max_single_put_size``, and should have ``retry_total=0``.

    Args:
        container: the container name (it must exist).
        prefix: blob name prefix, ``sessions/`` by default.
        client: an already-built aio ``ContainerClient`` or ``BlobServiceClient``
            (never closed by the store).
        connection_string, account_url, credential: as for ``BlobServiceClient``.
        encryption_scope: passed to every upload.

    Raises:
        StoreConfigError: no way to reach an account, or a bad option.
    """

    provider = "azure"
    capabilities = Capabilities(sync_client=True)  # one client per event loop
    url_location = "container"
    url_params: ClassVar[UrlParams] = {"account_url": text, "encryption_scope": text}

    def __init__(
        self,
        container: str,
        *,
        prefix: str = "sessions/",
        client: ContainerClient | BlobServiceClient | None = None,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        encryption_scope: str | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        super().__init__(prefix=prefix, **options)
        _check_options(container, client, connection_string, account_url, credential)
        if client is None and not connection_string and not account_url:
            connection_string = os.environ.get(ENV_CONNECTION_STRING)
            if not connection_string:
                raise StoreConfigError(
                    f"AzureBlobSessionStore needs a connection_string, an account_url, or"
                    f" ${ENV_CONNECTION_STRING}"
                )
        # account_url alone (no credential, no SAS in its query): DefaultAzureCredential.
        self._default_credential = bool(
            client is None
            and account_url
            and credential is None
            and "sig=" not in urlsplit(account_url).query.lower()
        )
        if self._default_credential and importlib.util.find_spec("azure.identity") is None:
            raise StoreConfigError(
                f"account_url without a credential uses DefaultAzureCredential: {_IDENTITY_HINT},"
                " or pass credential= (an account key, a SAS or an azure.identity.aio credential)"
            )
        self.container = container
        #: The account URL without its query (which may hold a SAS token).
        self.account_url = account_url.split("?", 1)[0] if account_url else None
        self.encryption_scope = encryption_scope
        self._account_url = account_url
        self._connection_string = connection_string
        self._credential = credential
        self._owned_sync_credential: Any = None
        self._use_client(client)

    @property
    def location(self) -> str:
        """``az://container``."""
        return f"az://{self.container}"

    @property
    def place(self) -> str:
        """The account URL (if given), the container and the prefix."""
        return f"{self.account_url or ''} {self.location}/{self.prefix}".lstrip()

    @property
    def client(self) -> ContainerClient | None:
        """The aio ``ContainerClient`` in use (None before first use unless injected)."""
        from azure.storage.blob.aio import ContainerClient

        client = super().client
        return client if isinstance(client, ContainerClient) else None

    def _adopt(self, injected: Any) -> ContainerClient:
        from azure.storage.blob.aio import BlobServiceClient

        if isinstance(injected, BlobServiceClient):
            return injected.get_container_client(self.container)
        return cast("ContainerClient", injected)

    async def _build_client(self, stack: contextlib.AsyncExitStack) -> ContainerClient:
        from azure.storage.blob.aio import ContainerClient

        credential = self._credential
        if self._default_credential:
            identity = importlib.import_module("azure.identity.aio")
            credential = identity.DefaultAzureCredential()  # one per loop, like the client
            stack.push_async_callback(credential.close)
        client = cast("ContainerClient", self._new_client(ContainerClient, credential))
        stack.push_async_callback(client.close)
        return client

    def _build_sync_client(self) -> SyncContainerClient:
        credential = self._credential
        if self._default_credential:
            identity = importlib.import_module("azure.identity")
            credential = self._owned_sync_credential = identity.DefaultAzureCredential()
        try:
            return cast(SyncContainerClient, self._new_client(SyncContainerClient, credential))
        except StoreConfigError:
            self._close_sync_credential()
            raise

    def _new_client(self, cls: Any, credential: Any) -> Any:
        """A ``ContainerClient`` (aio or sync ``cls``) from the store's settings."""
        limit = self._codec.max_snapshot_bytes
        kwargs: dict[str, Any] = {
            "retry_total": 0,
            # One Put Blob and one Get Blob per operation, for any allowed snapshot.
            "max_single_put_size": max(_SINGLE_PUT_FLOOR, limit),
            "max_single_get_size": limit,
        }
        try:
            if self._connection_string:
                return cls.from_connection_string(
                    self._connection_string, self.container, credential=credential, **kwargs
                )
            return cls(str(self._account_url), self.container, credential=credential, **kwargs)
        except ValueError as exc:  # a malformed connection string, a token over http, ...
            # Not chained: the SDK's text may quote the URL, and so a SAS token.
            raise StoreConfigError(
                f"azure {self.location}: the SDK refused the connection settings"
                f" ({redact(str(exc))})"
            ) from None

    def _serves_sync(self) -> bool:
        # An async token credential (azure.identity.aio) cannot serve a sync client.
        token_credential = callable(getattr(self._credential, "get_token", None))
        return not token_credential and super()._serves_sync()

    def _close_sync(self) -> None:
        super()._close_sync()
        self._close_sync_credential()

    def _close_sync_credential(self) -> None:
        credential, self._owned_sync_credential = self._owned_sync_credential, None
        if credential is not None:
            credential.close()

    def _classify(self, exc: Exception) -> type[Fault]:
        if isinstance(exc, ClientAuthenticationError):
            return AccessDenied
        if isinstance(exc, HttpResponseError):
            status = exc.status_code
            if status is None and (
                isinstance(exc, IncompleteReadError) or isinstance(_inner(exc), _BROKEN_READ)
            ):
                return Transient  # the body broke off mid-read
            fault = http_fault(status, _code(exc), _CODES)
            if fault is Failed and isinstance(exc, ResourceModifiedError):
                return PreconditionFailed
            if fault is Failed and isinstance(exc, ResourceNotFoundError):
                return NotFound
            return fault
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return Transient
        if isinstance(exc, ConnectionError | TimeoutError):
            return Transient
        return Failed

    def _error_detail(self, exc: Exception) -> str:
        # Never str(exc): Azure messages can carry request URLs, and so SAS tokens.
        if isinstance(exc, HttpResponseError):
            if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
                return f"{type(exc).__name__}, the credential gave no token"
            if exc.status_code is None:
                return f"{type(_inner(exc) or exc).__name__}, no complete response"
            return f"{_code(exc) or type(exc).__name__}, HTTP {exc.status_code}"
        return type(exc).__name__

    def _container(self) -> Any:
        """The running call's ``ContainerClient`` (aio, or sync for a sync-API call)."""
        assert self._client is not None, "the store is not open"
        return self._client

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        condition: Condition,
    ) -> str:
        kwargs = _if_version(condition.version)
        if self.encryption_scope:
            kwargs["encryption_scope"] = self.encryption_scope
        result = await self._request(
            self._container().get_blob_client(key).upload_blob,
            body,
            overwrite=not condition.absent,  # overwrite=False sends If-None-Match: *
            metadata=_to_azure(metadata),
            content_settings=ContentSettings(content_type=content_type),
            **kwargs,
        )
        return _etag(result["etag"])

    async def _get(self, key: str) -> StoredObject:
        # The first response holds up to max_single_get_size bytes (the whole snapshot
        # for a store-built client) and announces the blob's full size.
        downloader = await self._request(self._container().download_blob, key, max_concurrency=1)
        self._check_stored_size(key, downloader.size)
        body = await self._request(downloader.readall)
        props = downloader.properties
        info = ObjectInfo(_etag(props.etag), props.last_modified, _from_azure(props.metadata))
        return StoredObject(body, info)

    async def _head(self, key: str) -> ObjectInfo:
        props = await self._request(self._container().get_blob_client(key).get_blob_properties)
        return ObjectInfo(
            _etag(props.etag), props.last_modified, _from_azure(props.metadata), props.size
        )

    async def _delete(self, key: str, *, condition: Condition) -> None:
        await self._request(self._container().delete_blob, key, **_if_version(condition.version))

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        pager = (
            self._container()
            .walk_blobs(name_starts_with=prefix, delimiter="/", results_per_page=page_size)
            .by_page(continuation_token=token)
        )
        if sync_call():
            items = list(await self._blocking(next, pager))
        else:
            items = [item async for item in await pager.__anext__()]
        objects = [
            ListedObject(item.name, item.last_modified, _etag(item.etag), item.size)
            for item in items
            if isinstance(item, BlobProperties)  # not a BlobPrefix ("subfolder")
        ]
        next_token: Any = getattr(pager, "continuation_token", None)
        return Page(objects, str(next_token) if next_token else None)

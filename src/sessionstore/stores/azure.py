"""AzureBlobSessionStore: sessions as block blobs in an Azure Storage container.

Built on ``azure.storage.blob.aio``. One ``ContainerClient`` is built on first use and
reused; ``aclose()`` closes it (an injected client is never closed). The SDK's retries
are off (``retry_total=0``; its default waits ~15 s before a first retry): the base
class's tenacity loop is the one retry owner. Azure metadata names must be C#
identifiers, so the base's ``sessionstore-*`` names are stored as ``sessionstore_*``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Unpack

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobProperties, ContentSettings
from azure.storage.blob.aio import ContainerClient

from sessionstore.base import (
    ErrorKind,
    ListedObject,
    ObjectInfo,
    ObjectSessionStore,
    Page,
    StoredObject,
    StoreOptions,
)
from sessionstore.errors import StoreConfigError

__all__ = ["AzureBlobSessionStore"]

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_ACCESS_CODES = frozenset(
    {"ContainerNotFound", "AuthenticationFailed", "AuthorizationFailure", "AccountIsDisabled"}
)
_PRECONDITION_CODES = frozenset({"ConditionNotMet", "BlobAlreadyExists", "TargetConditionNotMet"})
_SINGLE_PUT_FLOOR = 64 * 1024 * 1024


def _code(exc: HttpResponseError) -> str:
    """The service's error code as a plain string (the SDK gives an enum or a str)."""
    code: Any = getattr(exc, "error_code", None)
    if not code:
        code = (getattr(exc.response, "headers", None) or {}).get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")


def _to_azure(name: str) -> str:
    return name.replace("-", "_")


def _from_azure(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in (metadata or {}).items()}


class AzureBlobSessionStore(ObjectSessionStore):
    """Sessions in an Azure Blob Storage container (or Azurite).

    Credentials, in order: ``client``; ``connection_string``; ``account_url`` with
    ``credential`` (an account key, a SAS token, or an azure-identity credential
    from the ``azure-identity`` extra); else ``$AZURE_STORAGE_CONNECTION_STRING``.

    Args:
        container: the container name (it must exist).
        prefix: blob name prefix, ``sessions/`` by default.
        client: an already-built aio ``ContainerClient`` (never closed by the store).
        connection_string, account_url, credential: as for ``BlobServiceClient``.
        encryption_scope: passed to every upload.

    Raises:
        StoreConfigError: no way to reach an account, or a bad option.
    """

    provider = "azure"

    def __init__(
        self,
        container: str,
        *,
        prefix: str = "sessions/",
        client: ContainerClient | None = None,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        encryption_scope: str | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        super().__init__(prefix=prefix, **options)
        if not isinstance(container, str) or not container:
            raise StoreConfigError(f"container must be a non-empty str, not {container!r}")
        if client is None and not connection_string and not account_url:
            connection_string = os.environ.get(ENV_CONNECTION_STRING)
            if not connection_string:
                raise StoreConfigError(
                    f"AzureBlobSessionStore needs a connection_string, an account_url, or"
                    f" ${ENV_CONNECTION_STRING}"
                )
        self.container = container
        self.account_url = account_url
        self.encryption_scope = encryption_scope
        self._connection_string = connection_string
        self._credential = credential
        self._injected = client
        self._client: ContainerClient | None = client

    @property
    def location(self) -> str:
        """``az://container``."""
        return f"az://{self.container}"

    @property
    def client(self) -> ContainerClient | None:
        """The aio ``ContainerClient`` in use (None before first use unless injected)."""
        return self._client

    async def _open(self) -> None:
        if self._injected is not None:
            return
        limit = self._codec.max_snapshot_bytes
        kwargs: dict[str, Any] = {
            "retry_total": 0,
            # One Put Blob and one Get Blob per operation, for any allowed snapshot.
            "max_single_put_size": max(_SINGLE_PUT_FLOOR, limit),
            "max_single_get_size": limit,
        }
        if self._connection_string:
            self._client = ContainerClient.from_connection_string(
                self._connection_string, self.container, credential=self._credential, **kwargs
            )
        else:
            self._client = ContainerClient(
                str(self.account_url), self.container, credential=self._credential, **kwargs
            )

    async def _close(self) -> None:
        if self._injected is None and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def _classify(self, exc: Exception) -> ErrorKind:
        if isinstance(exc, HttpResponseError):
            code = _code(exc)
            status = exc.status_code
            if code in _ACCESS_CODES or isinstance(exc, ClientAuthenticationError):
                return ErrorKind.ACCESS
            if status in (401, 403):
                return ErrorKind.ACCESS
            if code in _PRECONDITION_CODES or isinstance(exc, ResourceModifiedError):
                return ErrorKind.PRECONDITION
            if isinstance(exc, ResourceNotFoundError) or status == 404:
                return ErrorKind.NOT_FOUND
            if status in _TRANSIENT_STATUS:
                return ErrorKind.TRANSIENT
            return ErrorKind.OTHER
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return ErrorKind.TRANSIENT
        if isinstance(exc, ConnectionError | TimeoutError):
            return ErrorKind.TRANSIENT
        return ErrorKind.OTHER

    def _error_detail(self, exc: Exception) -> str:
        # Never str(exc): Azure messages can carry request URLs, and so SAS tokens.
        if isinstance(exc, HttpResponseError):
            return f"{_code(exc) or type(exc).__name__}, HTTP {exc.status_code}"
        return type(exc).__name__

    def _container(self) -> ContainerClient:
        assert self._client is not None, "the store is not open"
        return self._client

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        kwargs: dict[str, Any] = {}
        if if_version is not None:
            kwargs = {"etag": if_version, "match_condition": MatchConditions.IfNotModified}
        if self.encryption_scope:
            kwargs["encryption_scope"] = self.encryption_scope
        result = (
            await self._container()
            .get_blob_client(key)
            .upload_blob(
                body,
                overwrite=not if_absent,  # overwrite=False sends If-None-Match: *
                metadata={_to_azure(k): v for k, v in metadata.items()},
                content_settings=ContentSettings(content_type=content_type),
                **kwargs,
            )
        )
        return str(result["etag"])

    async def _get(self, key: str) -> StoredObject:
        downloader = await self._container().download_blob(key, max_concurrency=1)
        self._check_stored_size(key, downloader.size)
        body = await downloader.readall()
        props = downloader.properties
        info = ObjectInfo(str(props.etag), props.last_modified, _from_azure(props.metadata))
        return StoredObject(body, info)

    async def _head(self, key: str) -> ObjectInfo:
        props = await self._container().get_blob_client(key).get_blob_properties()
        return ObjectInfo(
            str(props.etag), props.last_modified, _from_azure(props.metadata), props.size
        )

    async def _delete(self, key: str, *, if_version: str | None) -> None:
        kwargs: dict[str, Any] = {}
        if if_version is not None:
            kwargs = {"etag": if_version, "match_condition": MatchConditions.IfNotModified}
        await self._container().delete_blob(key, **kwargs)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        pager = (
            self._container()
            .walk_blobs(name_starts_with=prefix, delimiter="/", results_per_page=page_size)
            .by_page(continuation_token=token)
        )
        objects = [
            ListedObject(item.name, item.last_modified, str(item.etag), item.size)
            async for item in await pager.__anext__()
            if isinstance(item, BlobProperties)  # not a BlobPrefix ("subfolder")
        ]
        next_token: Any = getattr(pager, "continuation_token", None)
        return Page(objects, str(next_token) if next_token else None)

"""GCSSessionStore: sessions as objects in a Google Cloud Storage bucket.

google-cloud-storage is synchronous, so every SDK call of an async caller runs on a
bounded thread pool owned by the store, never on the event loop (a sync-API call makes
it on the caller's thread, with a client of its own); the HTTP connection pool of the client
the store builds is sized to match (requests' default of 10 would discard
connections under load). The SDK's retries are off (``retry=None`` on every call):
the base class's tenacity loop is the one retry owner. ``STORAGE_EMULATOR_HOST`` and
Application Default Credentials work as in the SDK.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar, Unpack
from urllib.parse import quote

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import storage

from sessionstore.clients import ClientStore
from sessionstore.deadline import remaining
from sessionstore.errors import StoreConfigError
from sessionstore.provider import (
    AccessDenied,
    Capabilities,
    Condition,
    Failed,
    Fault,
    ListedObject,
    ObjectInfo,
    Page,
    PreconditionFailed,
    StoredObject,
    StoreOptions,
    Transient,
    http_fault,
)
from sessionstore.urlparams import POOL, TIMEOUT, UrlParams, text

__all__ = ["GCSSessionStore"]

T = TypeVar("T")
_META_HEADER = "x-goog-meta-"
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exc.TransportError,
    ConnectionError,
    TimeoutError,
)
_ACCESS_ERRORS = (
    auth_exc.RefreshError,
    auth_exc.DefaultCredentialsError,  # no ADC found: a credentials problem, not a bug
)


class GCSSessionStore(ClientStore):
    """Sessions in a GCS bucket (or fake-gcs-server via ``STORAGE_EMULATOR_HOST``).

    Args:
        bucket: the bucket name (it must exist).
        prefix: object name prefix, ``sessions/`` by default.
        client: an already-built ``google.cloud.storage.Client`` (never closed).
        project, credentials: as for ``storage.Client`` (default: ADC, or anonymous
            credentials with the emulator).
        kms_key_name: a Cloud KMS key for the objects the store writes.
        max_workers: size of the store's thread pool and HTTP connection pool (1..1024).
        timeout: seconds for each HTTP request (> 0 and <= 3600).

    Raises:
        StoreConfigError: an empty bucket name or a bad option.
    """

    # a thread pool and requests: one client serves every event loop and the sync API
    capabilities = Capabilities(sync_client=True, client_follows_loop=False)

    provider = "gcs"
    url_location = "bucket"
    url_params: ClassVar[UrlParams] = {
        "project": text,
        "kms_key_name": text,
        "max_workers": POOL,
        "timeout": TIMEOUT,
    }

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "sessions/",
        client: Any = None,
        project: str | None = None,
        credentials: Any = None,
        kms_key_name: str | None = None,
        max_workers: int = 32,
        timeout: float = 30.0,
        **options: Unpack[StoreOptions],
    ) -> None:
        super().__init__(prefix=prefix, **options)
        if not isinstance(bucket, str) or not bucket:
            raise StoreConfigError(f"bucket must be a non-empty str, not {bucket!r}")
        POOL.check("max_workers", max_workers)
        TIMEOUT.check("timeout", timeout)
        self.bucket = bucket
        self.project = project
        self.kms_key_name = kms_key_name
        self.max_workers = max_workers
        self.timeout = timeout
        self._credentials = credentials
        self._executor: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._use_client(client)

    @property
    def location(self) -> str:
        """``gs://bucket``."""
        return f"gs://{self.bucket}"

    def _worker_pool(self) -> ThreadPoolExecutor:
        """The store's own pool (``max_workers`` threads), made on first use."""
        pool = self._executor
        if pool is None:
            with self._pool_lock:
                pool = self._executor
                if pool is None:
                    pool = self._executor = ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="sessionstore-gcs"
                    )
        return pool

    async def _build_client(self, stack: contextlib.AsyncExitStack) -> Any:
        client = await self._blocking(self._new_client)
        stack.callback(client.close)  # closes its HTTP session: no request, no wait
        return client

    def _build_sync_client(self) -> Any:
        # An injected client is the same synchronous SDK: sync calls use it too.
        return self._injected or self._new_client()

    def _serves_sync(self) -> bool:
        return True

    def _new_client(self) -> Any:
        client = storage.Client(project=self.project, credentials=self._credentials)
        # google-cloud-storage >= 3.16 fetches each bucket's metadata in a background
        # thread on first use, for tracing attributes: one more billed request per cold
        # start, for nothing the store uses (the SDK's own switch is the environment
        # variable DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA).
        if hasattr(client, "_bucket_metadata_cache"):
            client._bucket_metadata_cache = None
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=self.max_workers, max_retries=0
        )
        client._http.mount("https://", adapter)
        client._http.mount("http://", adapter)
        return client

    def _close_sync_client(self, client: Any) -> None:
        if client is not self._injected:
            client.close()

    async def aclose(self) -> None:
        """Close the clients the store built (not an injected one) and its thread pool."""
        await super().aclose()
        self._end_executor(wait=True)

    def _forked(self) -> None:
        # The pool's threads did not survive the fork: the child makes a new pool.
        super()._forked()
        self._executor = None
        self._pool_lock = threading.Lock()

    def _end_executor(self, *, wait: bool) -> None:
        pool, self._executor = self._executor, None
        if pool is not None:
            pool.shutdown(wait=wait)

    def _blob(self, key: str, **kwargs: Any) -> Any:
        """The SDK's handle on one object, from the running call's client."""
        return self._client.bucket(self.bucket).blob(key, **kwargs)

    def _timeout(self) -> float:
        """The request timeout: ``timeout``, or less when a deadline ends sooner.

        A request the deadline cut off then ends in its worker thread too.
        """
        left = remaining()
        return self.timeout if left is None else max(0.001, min(self.timeout, left))

    def _classify(self, exc: Exception) -> type[Fault]:
        if isinstance(exc, gexc.GoogleAPICallError):
            # Real GCS says "The specified bucket does not exist." for a missing bucket
            # and "No such object: ..." for a missing object; fake-gcs-server says only
            # "Not Found" for both (so there a missing bucket reads as a missing object,
            # except on save and list, which the base maps to StoreAccessError).
            if exc.code == 404 and "bucket does not exist" in _reason(exc).lower():
                return AccessDenied
            return http_fault(exc.code)
        if isinstance(exc, _ACCESS_ERRORS):
            return AccessDenied
        if isinstance(exc, _TRANSIENT_ERRORS):
            return Transient
        return Failed

    def _error_detail(self, exc: Exception) -> str:
        if isinstance(exc, gexc.GoogleAPICallError):
            return f"{type(exc).__name__}, HTTP {exc.code}: {_reason(exc)[:200]}"
        return type(exc).__name__

    # -------------------------------------------------------------- primitives

    def _put_sync(
        self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str], match: Any
    ) -> str:
        blob = self._blob(key, kms_key_name=self.kms_key_name)
        blob.metadata = dict(metadata)
        # One multipart request up to 8 MiB (the SDK's limit; bigger bodies take a
        # resumable upload of two requests). No Content-Encoding: GCS would transcode.
        blob.upload_from_string(
            body,
            content_type=content_type,
            if_generation_match=match,
            retry=None,
            timeout=self._timeout(),
        )
        return str(blob.generation)

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        condition: Condition,
    ) -> str:
        match = 0 if condition.absent else _generation(condition.version)
        return await self._blocking(self._put_sync, key, body, content_type, metadata, match)

    def _get_sync(self, key: str) -> StoredObject:
        # One media GET whose headers carry generation, Last-Modified and metadata
        # (blob.download_as_bytes() would drop the last two, costing a second GET).
        url = (
            f"{self._client._connection.API_BASE_URL}/download/storage/v1/b/"
            f"{quote(self.bucket, safe='')}/o/{quote(key, safe='')}?alt=media"
        )
        response = self._client._http.get(url, stream=True, timeout=self._timeout())
        with response:
            if response.status_code >= 400:
                response.content  # noqa: B018 - read the error body for the message
                raise gexc.from_http_response(response)  # type: ignore[no-untyped-call]
            length = response.headers.get("Content-Length")
            self._check_stored_size(key, int(length) if length else None)
            body = response.content
            headers = response.headers
        return StoredObject(
            body,
            ObjectInfo(
                version=headers["X-Goog-Generation"],
                last_modified=_http_date(headers.get("Last-Modified")),
                metadata={
                    name[len(_META_HEADER) :].lower(): value
                    for name, value in headers.items()
                    if name.lower().startswith(_META_HEADER)
                },
                size=len(body),
            ),
        )

    async def _get(self, key: str) -> StoredObject:
        return await self._blocking(self._get_sync, key)

    def _head_sync(self, key: str) -> ObjectInfo:
        blob = self._blob(key)
        blob.reload(retry=None, timeout=self._timeout())
        return ObjectInfo(str(blob.generation), blob.updated, blob.metadata or {}, blob.size)

    async def _head(self, key: str) -> ObjectInfo:
        return await self._blocking(self._head_sync, key)

    async def _delete(self, key: str, *, condition: Condition) -> None:
        blob = self._blob(key)
        await self._blocking(
            blob.delete,
            if_generation_match=_generation(condition.version),
            retry=None,
            timeout=self._timeout(),
        )

    def _list_sync(self, prefix: str, page_size: int, token: str | None) -> Page:
        iterator = self._client.list_blobs(
            self.bucket,
            prefix=prefix,
            delimiter="/",
            page_size=page_size,
            page_token=token,
            retry=None,
            timeout=self._timeout(),
        )
        page = next(iterator.pages)
        objects = [
            ListedObject(blob.name, blob.updated, str(blob.generation), blob.size) for blob in page
        ]
        return Page(objects, iterator.next_page_token)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        return await self._blocking(self._list_sync, prefix, page_size, token)


def _generation(version: str | None) -> int | None:
    """The generation a version token names; a token that is none cannot match."""
    if version is None:
        return None
    if not version.isdigit():
        raise PreconditionFailed(f"{version!r} is not a GCS generation")
    return int(version)


def _reason(exc: gexc.GoogleAPICallError) -> str:
    """The service's own error message, without the request line the SDK prepends.

    Uploads raise with ``METHOD url: <body>: <status tuple>`` and JSON calls with
    ``METHOD url: <message>``, so the message comes from the response body when there
    is one (the JSON ``error.message``, else the text body).
    """
    response = exc.response
    if isinstance(response, requests.Response):
        try:
            return str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            if response.text.strip():
                return response.text.strip()
    message = str(exc.message)
    return message.split(": ", 1)[-1] if message.split(" ", 1)[0].isupper() else message


def _http_date(value: str | None) -> datetime | None:
    return parsedate_to_datetime(value) if value else None

"""S3SessionStore: sessions as objects in an S3 bucket, on aiobotocore (aioboto3's core).

One session and one client are built on first use and reused for every call;
``aclose()`` closes them (an injected client or session is never closed). The client
comes straight from aiobotocore, which aioboto3 builds on: aioboto3's resource and
transfer layers are not needed here and cost a fresh process time to load. Calls
through the sync API use botocore's synchronous client instead (no aiohttp at all).
botocore's own retries are off (``total_max_attempts=1``): the base class's tenacity
loop is the one retry owner. Endpoint, region and credentials follow boto3's
conventions (``AWS_*`` variables, ``AWS_ENDPOINT_URL``, profiles, instance roles).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Mapping
from typing import Any, ClassVar, Unpack
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    InvalidRegionError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.utils import validate_region_name

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
    sync_call,
)
from sessionstore.urlparams import POOL, TIMEOUT, UrlParams, text

__all__ = ["S3SessionStore"]

# The async client's SDK is imported when the first async call builds it (a process
# on the sync API never loads it); its absence is an install problem, told at once.
if importlib.util.find_spec("aiobotocore") is None:
    raise ModuleNotFoundError("No module named 'aiobotocore'", name="aiobotocore")

#: S3 error codes whose meaning the HTTP status alone does not give.
_CODES: dict[str, type[Fault]] = {
    **dict.fromkeys(
        (
            "SlowDown",
            "Throttling",
            "ThrottlingException",
            "RequestTimeout",
            "InternalError",
            "ServiceUnavailable",
            "ConditionalRequestConflict",
            "OperationAborted",
        ),
        Transient,
    ),
    **dict.fromkeys(
        (
            "AccessDenied",
            "NoSuchBucket",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "AllAccessDisabled",
            "AccountProblem",
            "RequestTimeTooSkewed",  # a 403 that no retry fixes: the clock is wrong
        ),
        AccessDenied,
    ),
    **dict.fromkeys(("NoSuchKey", "NotFound", "404"), NotFound),
    **dict.fromkeys(("PreconditionFailed", "412"), PreconditionFailed),
}
# The fixes for settings botocore refuses (values are not echoed: they may come from
# a URL's query or the environment).
_ENDPOINT_HINT = (
    "endpoint_url (or $AWS_ENDPOINT_URL) must be an http:// or https:// URL with a host,"
    " such as http://127.0.0.1:4566"
)
_REGION_HINT = (
    "region_name (or $AWS_REGION / $AWS_DEFAULT_REGION) must be a region name such as"
    " us-east-1 or eu-west-1"
)
_TRANSIENT_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ResponseStreamingError,  # a body that broke off mid-read (the sync client)
    IncompleteReadError,
    ConnectionError,
    TimeoutError,
)


class S3SessionStore(ClientStore):
    """Sessions in an S3 bucket (or LocalStack, MinIO, any S3-compatible service).

    Args:
        bucket: the bucket name (it must exist).
        prefix: key prefix, ``sessions/`` by default.
        session: an ``aioboto3.Session`` or aiobotocore session to build the client
            from (never closed); sync-API calls then go through its client too.
        client: an already-open aioboto3 S3 client (never closed by the store).
        endpoint_url, region_name, aws_access_key_id, aws_secret_access_key,
        aws_session_token: as in boto3; unset means boto3's environment and config.
        sse: ``ServerSideEncryption`` for PutObject (``"AES256"`` or ``"aws:kms"``).
        sse_kms_key_id: ``SSEKMSKeyId`` for PutObject.
        max_pool_connections, connect_timeout, read_timeout: botocore client config
            (1..1024 connections; seconds > 0 and <= 3600).

    Raises:
        StoreConfigError: an empty bucket name or a bad option.
    """

    provider = "s3"
    capabilities = Capabilities(sync_client=True)  # one client per event loop
    url_location = "bucket"
    url_params: ClassVar[UrlParams] = {
        "region": text,
        "region_name": text,
        "endpoint_url": text,
        "sse": text,
        "sse_kms_key_id": text,
        "max_pool_connections": POOL,
        "connect_timeout": TIMEOUT,
        "read_timeout": TIMEOUT,
    }
    url_aliases: ClassVar[Mapping[str, str]] = {"region": "region_name"}

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "sessions/",
        session: Any = None,
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        max_pool_connections: int = 64,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        **options: Unpack[StoreOptions],
    ) -> None:
        super().__init__(prefix=prefix, **options)
        if not isinstance(bucket, str) or not bucket:
            raise StoreConfigError(f"bucket must be a non-empty str, not {bucket!r}")
        _check_endpoint_and_region(endpoint_url, region_name)
        POOL.check("max_pool_connections", max_pool_connections)
        TIMEOUT.check("connect_timeout", connect_timeout)
        TIMEOUT.check("read_timeout", read_timeout)
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._credentials = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        self._put_extra: dict[str, str] = {}
        if sse:
            self._put_extra["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            self._put_extra["SSEKMSKeyId"] = sse_kms_key_id
        self._config: dict[str, Any] = dict(
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=max_pool_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # botocore >= 1.36 computes a CRC32 of every body it sends and checks every
            # body it receives; the codec already refuses corrupt bodies, and the
            # checksum costs CPU per request. Keep it to the operations that need it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._session = session
        self._injected_session = session is not None
        self._use_client(client)

    @property
    def location(self) -> str:
        """``s3://bucket``."""
        return f"s3://{self.bucket}"

    @property
    def place(self) -> str:
        """The endpoint (if not AWS's), the bucket and the prefix."""
        return f"{self.endpoint_url or ''} {self.location}/{self.prefix}".lstrip()

    def _client_arguments(self, config: Any) -> dict[str, Any]:
        credentials = {k: v for k, v in self._credentials.items() if v is not None}
        return (
            dict(endpoint_url=self.endpoint_url, region_name=self.region_name, config=config)
            | credentials
        )

    async def _build_client(self, stack: contextlib.AsyncExitStack) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        if self._session is None:
            # Kept for the next client: a store that follows its callers' event loops
            # (asyncio.run per invocation) builds one client per loop, and a session
            # loads botocore's service models and resolves credentials only once.
            self._session = get_session()
        session = self._session
        create = session.client if hasattr(session, "client") else session.create_client
        try:
            client = await stack.enter_async_context(
                create("s3", **self._client_arguments(AioConfig(**self._config)))
            )
            _check_client(client)
        except ValueError as exc:
            raise self._config_error(exc) from None
        return client

    def _serves_sync(self) -> bool:
        # An injected session's credentials and settings belong to the async client.
        return not self._injected_session and super()._serves_sync()

    def _build_sync_client(self) -> Any:
        arguments = self._client_arguments(Config(**self._config))
        try:
            client = botocore.session.get_session().create_client("s3", **arguments)
        except ValueError as exc:
            raise self._config_error(exc) from None
        try:
            _check_client(client)
        except ValueError as exc:
            client.close()
            raise self._config_error(exc) from None
        return client

    def _config_error(self, exc: ValueError) -> StoreConfigError:
        """The StoreConfigError naming the fix for a setting botocore refused."""
        if isinstance(exc, StoreConfigError):
            return exc
        hint = _REGION_HINT if isinstance(exc, InvalidRegionError) else _ENDPOINT_HINT
        return StoreConfigError(f"s3 {self.location}: {hint}")

    def _classify(self, exc: Exception) -> type[Fault]:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return http_fault(status, code, _CODES)
        if isinstance(exc, _TRANSIENT_ERRORS):
            return Transient
        if isinstance(exc, NoCredentialsError):
            return AccessDenied
        # aiohttp's errors (ClientConnectionError, ServerDisconnectedError, payload
        # errors) reach us unwrapped when a connection breaks mid-body.
        if type(exc).__module__.startswith("aiohttp"):
            return Transient
        return Failed

    def _error_detail(self, exc: Exception) -> str:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            detail = f"{error.get('Code', 'error')}, HTTP {status}"
            if status == 501 and exc.operation_name == "DeleteObject":
                detail += (
                    ": this endpoint does not implement conditional deletes (If-Match on"
                    " DeleteObject, which AWS S3 supports since 2025-09)"
                )
            return detail
        return type(exc).__name__

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        condition: Condition,
    ) -> str:
        kwargs: dict[str, Any] = dict(self._put_extra)
        if condition.version is not None:
            kwargs["IfMatch"] = condition.version
        elif condition.absent:
            kwargs["IfNoneMatch"] = "*"
        response = await self._request(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata=dict(metadata),
            **kwargs,
        )
        return str(response["ETag"])

    async def _get(self, key: str) -> StoredObject:
        response = await self._request(self._client.get_object, Bucket=self.bucket, Key=key)
        stream = response["Body"]
        if sync_call():
            with stream:
                self._check_stored_size(key, response.get("ContentLength"))
                body = await self._blocking(stream.read)
        else:
            async with stream:
                self._check_stored_size(key, response.get("ContentLength"))
                body = await stream.read()
        return StoredObject(bytes(body), _info(response))

    async def _head(self, key: str) -> ObjectInfo:
        return _info(await self._request(self._client.head_object, Bucket=self.bucket, Key=key))

    async def _delete(self, key: str, *, condition: Condition) -> None:
        kwargs: dict[str, Any] = {}
        if condition.version is not None:
            kwargs["IfMatch"] = condition.version
        await self._request(self._client.delete_object, Bucket=self.bucket, Key=key, **kwargs)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        kwargs["MaxKeys"] = page_size
        if token:
            kwargs["ContinuationToken"] = token
        response = await self._request(self._client.list_objects_v2, **kwargs)
        objects = [
            ListedObject(obj["Key"], obj.get("LastModified"), obj.get("ETag"), obj.get("Size"))
            for obj in response.get("Contents", [])
        ]
        next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return Page(objects, next_token)

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3SessionStore({self.bucket!r}, prefix={self.prefix!r}{endpoint})"


def _check_client(client: Any) -> None:
    """Check the endpoint and region a client got from the environment or a profile."""
    _check_endpoint_and_region(client.meta.endpoint_url, client.meta.region_name)


def _check_endpoint_and_region(endpoint_url: Any, region_name: Any) -> None:
    """StoreConfigError naming the fix for an endpoint or region botocore would refuse."""
    if endpoint_url is not None:
        parts = urlsplit(endpoint_url) if isinstance(endpoint_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreConfigError(_ENDPOINT_HINT)
    if region_name is not None:
        try:
            validate_region_name(region_name)
        except (InvalidRegionError, TypeError):
            raise StoreConfigError(_REGION_HINT) from None


def _info(response: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        version=str(response["ETag"]),
        last_modified=response.get("LastModified"),
        metadata=response.get("Metadata") or {},
        size=response.get("ContentLength"),
    )

"""S3SessionStore: sessions as objects in an S3 bucket, on aioboto3.

One aioboto3 session and one client are built on first use and reused for every call;
``aclose()`` closes them (an injected client or session is never closed). botocore's
own retries are off (``total_max_attempts=1``): the base class's tenacity loop is the
one retry owner. Endpoint, region and credentials follow boto3's conventions
(``AWS_*`` variables, ``AWS_ENDPOINT_URL``, profiles, instance roles).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar, Unpack
from urllib.parse import urlsplit

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.utils import validate_region_name

from sessionstore.clients import ClientStore
from sessionstore.errors import StoreConfigError
from sessionstore.provider import (
    ListedObject,
    ObjectInfo,
    Page,
    StoredObject,
    StoreOptions,
    _AccessDenied,
    _Failed,
    _Fault,
    _NotFound,
    _PreconditionFailed,
    _Transient,
    http_fault,
)
from sessionstore.urlparams import UrlParams, positive_int, seconds, text

__all__ = ["S3SessionStore"]

#: S3 error codes whose meaning the HTTP status alone does not give.
_CODES: dict[str, type[_Fault]] = {
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
        _Transient,
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
        _AccessDenied,
    ),
    **dict.fromkeys(("NoSuchKey", "NotFound", "404"), _NotFound),
    **dict.fromkeys(("PreconditionFailed", "412"), _PreconditionFailed),
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
    ConnectionError,
    TimeoutError,
)


class S3SessionStore(ClientStore):
    """Sessions in an S3 bucket (or LocalStack, MinIO, any S3-compatible service).

    Args:
        bucket: the bucket name (it must exist).
        prefix: key prefix, ``sessions/`` by default.
        session: an ``aioboto3.Session`` to build the client from (never closed).
        client: an already-open aioboto3 S3 client (never closed by the store).
        endpoint_url, region_name, aws_access_key_id, aws_secret_access_key,
        aws_session_token: as in boto3; unset means boto3's environment and config.
        sse: ``ServerSideEncryption`` for PutObject (``"AES256"`` or ``"aws:kms"``).
        sse_kms_key_id: ``SSEKMSKeyId`` for PutObject.
        max_pool_connections, connect_timeout, read_timeout: botocore client config.

    Raises:
        StoreConfigError: an empty bucket name or a bad option.
    """

    provider = "s3"
    url_location = "bucket"
    url_params: ClassVar[UrlParams] = {
        "region": text,
        "region_name": text,
        "endpoint_url": text,
        "sse": text,
        "sse_kms_key_id": text,
        "max_pool_connections": positive_int,
        "connect_timeout": seconds,
        "read_timeout": seconds,
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
        self._config = AioConfig(
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
        self._use_client(client)
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def location(self) -> str:
        """``s3://bucket``."""
        return f"s3://{self.bucket}"

    @property
    def place(self) -> str:
        """The endpoint (if not AWS's), the bucket and the prefix."""
        return f"{self.endpoint_url or ''} {self.location}/{self.prefix}".lstrip()

    async def _build_client(self) -> Any:
        stack = contextlib.AsyncExitStack()
        if self._session is None:
            # Kept for the next client: a store that follows its callers' event loops
            # (asyncio.run per invocation) builds one client per loop, and a session
            # loads botocore's service models and resolves credentials only once.
            self._session = aioboto3.Session()
        session = self._session
        kwargs = {k: v for k, v in self._credentials.items() if v is not None}
        try:
            client = await stack.enter_async_context(
                session.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region_name,
                    config=self._config,
                    **kwargs,
                )
            )
            # Settings from the environment or a profile are checked here, not earlier.
            _check_endpoint_and_region(client.meta.endpoint_url, client.meta.region_name)
        except ValueError as exc:  # botocore's InvalidRegionError, "Invalid endpoint: ..."
            await stack.aclose()
            if isinstance(exc, StoreConfigError):
                raise
            hint = _REGION_HINT if isinstance(exc, InvalidRegionError) else _ENDPOINT_HINT
            raise StoreConfigError(f"s3 {self.location}: {hint}") from None
        self._stack = stack
        return client

    async def _close_client(self, client: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def _classify(self, exc: Exception) -> type[_Fault]:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return http_fault(status, code, _CODES)
        if isinstance(exc, _TRANSIENT_ERRORS):
            return _Transient
        if isinstance(exc, NoCredentialsError):
            return _AccessDenied
        # aiohttp's errors (ClientConnectionError, ServerDisconnectedError, payload
        # errors) reach us unwrapped when a connection breaks mid-body.
        if type(exc).__module__.startswith("aiohttp"):
            return _Transient
        return _Failed

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
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        kwargs: dict[str, Any] = dict(self._put_extra)
        if if_version is not None:
            kwargs["IfMatch"] = if_version
        elif if_absent:
            kwargs["IfNoneMatch"] = "*"
        response = await self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata=dict(metadata),
            **kwargs,
        )
        return str(response["ETag"])

    async def _get(self, key: str) -> StoredObject:
        response = await self._client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as stream:
            self._check_stored_size(key, response.get("ContentLength"))
            body = await stream.read()
        return StoredObject(bytes(body), _info(response))

    async def _head(self, key: str) -> ObjectInfo:
        return _info(await self._client.head_object(Bucket=self.bucket, Key=key))

    async def _delete(self, key: str, *, if_version: str | None) -> None:
        kwargs: dict[str, Any] = {}
        if if_version is not None:
            kwargs["IfMatch"] = if_version
        await self._client.delete_object(Bucket=self.bucket, Key=key, **kwargs)

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        kwargs["MaxKeys"] = page_size
        if token:
            kwargs["ContinuationToken"] = token
        response = await self._client.list_objects_v2(**kwargs)
        objects = [
            ListedObject(obj["Key"], obj.get("LastModified"), obj.get("ETag"), obj.get("Size"))
            for obj in response.get("Contents", [])
        ]
        next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return Page(objects, next_token)

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3SessionStore({self.bucket!r}, prefix={self.prefix!r}{endpoint})"


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

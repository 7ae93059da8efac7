"""S3SessionStore on LocalStack: the contract, plus what only S3 has."""

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from sessionstore import ObjectSessionStore, SessionStoreError, StoreAccessError, open_store
from sessionstore.stores.s3 import S3SessionStore
from sessionstore.testing import Emulator
from tests.contract import MakeStore, RequestCountContract, StoreContract, snapshot


class TestS3Store(StoreContract, RequestCountContract):
    # LocalStack 4.13 answers If-Match on DeleteObject with 501 (AWS has it since 2025-09).
    conditional_deletes = "refused"

    @pytest.fixture
    def make_store(self, make_s3_store: MakeStore) -> MakeStore:
        return make_s3_store

    @pytest.fixture
    def counted_store(self, make_s3_store: MakeStore) -> Any:
        async def make(**options: Any) -> Any:
            store = make_s3_store(**options)
            await store._ensure_open()
            return store, count_requests(store)

        return make


def count_requests(store: ObjectSessionStore) -> Callable[[], list[str]]:
    """Record every HTTP request the store's botocore client sends."""
    sent: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        sent.append(request.method)

    store.client.meta.events.register("before-send.s3", before_send)  # type: ignore[attr-defined]
    return lambda: sent


async def test_sse_is_passed_through(make_s3_store: MakeStore) -> None:
    store = make_s3_store(sse="AES256")
    await store.save("enc", snapshot())
    head = await store.client.head_object(  # type: ignore[attr-defined]
        Bucket=store.bucket,  # type: ignore[attr-defined]
        Key=store.prefix + "enc.json",
    )
    assert head["ServerSideEncryption"] == "AES256"
    kms = make_s3_store(sse="aws:kms", sse_kms_key_id="alias/sessionstore-test")
    await kms._ensure_open()
    headers: list[dict[str, Any]] = []
    kms.client.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3", lambda request, **_: headers.append(dict(request.headers))
    )
    with contextlib.suppress(SessionStoreError):  # LocalStack runs no KMS here
        await kms.save("kms", snapshot())
    assert headers[0]["x-amz-server-side-encryption"] == b"aws:kms"
    assert headers[0]["x-amz-server-side-encryption-aws-kms-key-id"] == b"alias/sessionstore-test"


async def test_missing_bucket_is_an_access_error_at_once(localstack_s3: Emulator) -> None:
    async with S3SessionStore("no-such-bucket-sessionstore", **localstack_s3.options) as store:
        sent = count_requests(store)
        started = time.monotonic()
        with pytest.raises(StoreAccessError, match="no-such-bucket-sessionstore") as info:
            await store.save("s", snapshot())
        assert time.monotonic() - started < 2
        assert len(sent()) == 1
        assert "NoSuchBucket" in str(info.value)
        with pytest.raises(StoreAccessError):
            await store.load("s")


async def test_injected_client_is_not_closed(localstack_s3: Emulator, unique_prefix: str) -> None:
    import aioboto3

    session = aioboto3.Session()
    opts = dict(localstack_s3.options)
    async with session.client(
        "s3",
        endpoint_url=opts.pop("endpoint_url"),
        region_name=opts.pop("region_name"),
        **opts,
    ) as client:
        async with S3SessionStore(localstack_s3.bucket, client=client, prefix=unique_prefix) as s:
            await s.save("x", snapshot())
        # the store is closed; the client still works
        await client.head_object(Bucket=localstack_s3.bucket, Key=unique_prefix + "x.json")
        await client.delete_object(Bucket=localstack_s3.bucket, Key=unique_prefix + "x.json")


def test_repr_has_no_secrets() -> None:
    store = S3SessionStore(
        "b", aws_access_key_id="AKIASENTINEL", aws_secret_access_key="SENTINEL-SECRET"
    )
    assert "SENTINEL" not in repr(store)


async def test_open_store_url(localstack_s3: Emulator, unique_prefix: str) -> None:
    store = open_store(
        f"s3://{localstack_s3.bucket}/{unique_prefix}?region=us-east-1"
        f"&endpoint_url={localstack_s3.endpoint}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    assert isinstance(store, S3SessionStore)
    assert store.prefix == unique_prefix and store.region_name == "us-east-1"
    async with store:
        await store.save("u", snapshot())
        assert await store.load("u") == snapshot()
        await store.delete("u")

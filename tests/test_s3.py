"""S3SessionStore on LocalStack and on moto server: the contract, plus what only S3 has."""

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sessionstore import (
    ObjectSessionStore,
    SessionStoreError,
    StoreAccessError,
    StoreConfigError,
    open_store,
)
from sessionstore.provider import AccessDenied, NotFound, PreconditionFailed, Transient
from sessionstore.stores.s3 import S3SessionStore
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
    """Record every HTTP request the store's botocore client sends."""
    await store._ensure_open()
    sent: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        sent.append(request.method)

    store.client.meta.events.register("before-send.s3", before_send)  # type: ignore[attr-defined]
    return lambda: sent


@pytest.fixture
def store_url(localstack_s3: Emulator, unique_prefix: str) -> tuple[str, dict[str, str]]:
    """The URL (and environment) of the contract's subprocess checks."""
    return cloud_url("s3", localstack_s3, unique_prefix)


class TestS3Store(AsyncStoreContract, RequestCountContract):
    # LocalStack 4.13 answers If-Match on DeleteObject with 501 (AWS has it since 2025-09).
    conditional_deletes = "refused"

    @pytest.fixture
    def make_store(self, make_s3_store: MakeStore) -> MakeStore:
        return make_s3_store

    count_requests = staticmethod(count_requests)


class TestS3StoreOnMoto(TestS3Store):
    """The same contract on a second S3 implementation, which enforces If-Match on
    DeleteObject as AWS does (412 on a wrong ETag): conditional deletes for real."""

    conditional_deletes = "enforced"

    # Not collected on moto: its server checks If-Match / If-None-Match and then writes,
    # without a lock between the two (moto/s3/responses.py, put_object), so two racing
    # conditional PUTs can both pass there (a 20x20 CAS counter ended at 399 of 400).
    # AWS S3 and LocalStack serialize them; these two run on LocalStack above.
    test_cas_counter_under_concurrency = None  # type: ignore[assignment]
    test_racing_creates_have_one_winner = None  # type: ignore[assignment]

    @pytest.fixture
    def make_store(self, make_moto_s3_store: MakeStore) -> MakeStore:
        return make_moto_s3_store


class TestS3SyncStore(SyncStoreContract):
    conditional_deletes = "refused"

    @pytest.fixture
    def make_async_store(self, make_s3_store: MakeStore) -> MakeStore:
        return make_s3_store


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


async def test_missing_bucket_is_an_access_error_at_once(
    localstack_s3: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with S3SessionStore("no-such-bucket-sessionstore", **localstack_s3.options) as store:
        sent = await count_requests(store)
        caplog.set_level(logging.WARNING, logger="sessionstore")
        with pytest.raises(StoreAccessError, match="no-such-bucket-sessionstore") as info:
            await store.save("s", snapshot())
        assert len(sent()) == 1  # at once: one request, and no retry waited for
        assert "retrying" not in caplog.text
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


async def test_environment_configures_the_client(
    localstack_s3: Emulator, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = localstack_s3.options
    monkeypatch.setenv("AWS_ENDPOINT_URL", opts["endpoint_url"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", opts["region_name"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", opts["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", opts["aws_secret_access_key"])
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    async with S3SessionStore(localstack_s3.bucket, prefix=unique_prefix) as store:
        assert store.client.meta.endpoint_url == opts["endpoint_url"]
        assert store.client.meta.region_name == opts["region_name"]
        await store.save("env", snapshot())
        assert await store.load("env") == snapshot()
        await store.delete("env")


async def test_injected_session_builds_the_one_client(
    localstack_s3: Emulator, unique_prefix: str
) -> None:
    import aioboto3

    session = aioboto3.Session()
    sent: list[str] = []
    # handlers on the session's emitter are copied into every client built from it
    session.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    store = S3SessionStore(
        localstack_s3.bucket, session=session, prefix=unique_prefix, **localstack_s3.options
    )
    async with store:
        client = store.client
        await store.save("s", snapshot())
        assert await store.has("s")
        await store.delete("s")
        assert store.client is client  # one client for every call
    assert sent == ["PUT", "HEAD", "DELETE"]
    assert store.client is None  # the store's own client is closed by aclose()


async def test_wrong_credentials_never_leak(localstack_s3: Emulator) -> None:
    # LocalStack (community, host mode) accepts any access key and secret, so a wrong key
    # cannot be refused here; a real 403 (AccessDenied) failing on its first request with
    # StoreAccessError is tested through the fault proxy in tests/reliability/. What can
    # be tested here: the refusal a wrong account does meet, with the secret in use.
    options = dict(localstack_s3.options)
    options.update(aws_access_key_id="AKIASENTINELKEY", aws_secret_access_key="SENTINEL-SECRET")
    async with S3SessionStore("no-such-bucket-sessionstore", **options) as store:
        with pytest.raises(StoreAccessError, match="NoSuchBucket, HTTP 404") as info:
            await store.save("s", snapshot())
    texts = [str(info.value), repr(info.value), str(info.value.__cause__), repr(store)]
    assert [t for t in texts if "SENTINEL" in t] == []


@pytest.mark.parametrize(
    ("query", "fix"),
    [
        ("endpoint_url=notaurl", "such as http://127.0.0.1:4566"),
        ("endpoint_url=ftp://host", "such as http://127.0.0.1:4566"),
        ("endpoint_url=http://", "such as http://127.0.0.1:4566"),
        ("region=bad%20region", "such as us-east-1"),
    ],
)
def test_config_mistakes_are_config_errors_naming_the_fix(query: str, fix: str) -> None:
    with pytest.raises(StoreConfigError, match=fix) as info:
        open_store(f"s3://bucket/?{query}")
    assert "notaurl" not in str(info.value) and "bad region" not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("AWS_ENDPOINT_URL", "notaurl", "such as http://127.0.0.1:4566"),
        ("AWS_ENDPOINT_URL", "ftp://host", "such as http://127.0.0.1:4566"),
        ("AWS_DEFAULT_REGION", "bad region", "such as us-east-1"),
    ],
)
async def test_config_mistakes_in_the_environment_fail_at_open(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fix: str
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(variable, value)
    store = S3SessionStore("bucket", aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(StoreConfigError, match=fix) as info:
        await store.load("s")
    assert value not in str(info.value)
    await store.aclose()


def test_statuses_mean_what_they_mean_on_every_cloud() -> None:
    """S3 reads HTTP statuses from the table GCS and Azure use (408 and 429 retried)."""
    store = S3SessionStore("bkt", region_name="us-east-1")

    def error(status: int, code: str = "Whatever") -> ClientError:
        response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "PutObject")

    for status in (408, 429, 500, 502, 503, 504):
        assert store._classify(error(status)) is Transient
    assert store._classify(error(403)) is AccessDenied
    assert store._classify(error(412)) is PreconditionFailed
    assert store._classify(error(404)) is NotFound
    assert store._classify(error(404, "NoSuchBucket")) is AccessDenied  # the code wins
    assert store._classify(error(400, "SlowDown")) is Transient

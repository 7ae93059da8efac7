"""Pytest fixtures for tests against the local cloud (LocalStack, fake-gcs-server, Azurite).

Installed as a pytest plugin (entry point ``sessionstore``), so a project that has
``sessionstore`` installed can use these fixtures without importing anything::

    async def test_my_agent(s3_store):
        await s3_store.save("s1", {"tick": 1})
        assert await s3_store.has("s1")

Start the emulators first with ``localstack/up`` (or point the ``SESSIONSTORE_TEST_*``
variables at your own). An emulator that does not answer skips the tests that need it,
with a message saying how to start it; with ``SESSIONSTORE_REQUIRE_EMULATORS=1`` (CI)
it fails them instead. Each store fixture gets a unique prefix, and every object under
it is deleted after the test.
"""

from __future__ import annotations

import asyncio
import functools
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from sessionstore.registry import PROVIDERS

try:  # async fixtures that work whatever the user's pytest-asyncio mode is
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio they cannot run anyway
    _async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = [
    "AZURITE_CONNECTION_STRING",
    "Emulator",
    "azure_emulator",
    "azure_store",
    "azurite",
    "emulator_store",
    "fake_gcs",
    "gcs_emulator",
    "gcs_store",
    "localstack_s3",
    "make_azure_store",
    "make_gcs_store",
    "make_s3_store",
    "purge_prefix",
    "s3_emulator",
    "s3_store",
    "unique_prefix",
]

#: The published development account of Azurite (not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
DEFAULT_BUCKET = "sessionstore-test"
REQUIRE_ENV = "SESSIONSTORE_REQUIRE_EMULATORS"
_HINT = "start the local cloud with `localstack/up` (see localstack/README.md)"


@dataclass(frozen=True)
class Emulator:
    """Where one emulator answers and what the tests may use there."""

    name: str
    endpoint: str
    bucket: str
    options: dict[str, Any]


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except OSError:
        return False


def _require(emulator: Emulator, probe: str) -> Emulator:
    if not _answers(probe):
        message = f"{emulator.name} does not answer at {emulator.endpoint}: {_HINT}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return emulator


def s3_emulator() -> Emulator:
    """LocalStack's S3 (``SESSIONSTORE_TEST_S3_ENDPOINT``, default 127.0.0.1:4566)."""
    endpoint = _env("SESSIONSTORE_TEST_S3_ENDPOINT", "http://127.0.0.1:4566")
    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    bucket = _env("SESSIONSTORE_TEST_BUCKET", DEFAULT_BUCKET)
    return Emulator("LocalStack S3", endpoint, bucket, options)


def gcs_emulator() -> Emulator:
    """fake-gcs-server (``SESSIONSTORE_TEST_GCS_ENDPOINT``, default 127.0.0.1:9023)."""
    endpoint = _env("SESSIONSTORE_TEST_GCS_ENDPOINT", "http://127.0.0.1:9023")
    bucket = _env("SESSIONSTORE_TEST_BUCKET", DEFAULT_BUCKET)
    return Emulator("fake-gcs-server", endpoint, bucket, {"project": "test"})


def azure_emulator() -> Emulator:
    """Azurite's blob service (``SESSIONSTORE_TEST_AZURE_CONNECTION_STRING``)."""
    conn = _env("SESSIONSTORE_TEST_AZURE_CONNECTION_STRING", AZURITE_CONNECTION_STRING)
    endpoint = next(
        (p.split("=", 1)[1] for p in conn.split(";") if p.startswith("BlobEndpoint=")),
        "http://127.0.0.1:10000/devstoreaccount1",
    )
    bucket = _env("SESSIONSTORE_TEST_BUCKET", DEFAULT_BUCKET)
    return Emulator("Azurite", endpoint, bucket, {"connection_string": conn})


@pytest.fixture(scope="session")
def localstack_s3() -> Emulator:
    """LocalStack's S3, or a skip (a failure in CI) if it does not answer."""
    emulator = s3_emulator()
    return _require(emulator, f"{emulator.endpoint}/_localstack/health")


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[Emulator]:
    """fake-gcs-server, or a skip (a failure in CI) if it does not answer.

    Sets ``STORAGE_EMULATOR_HOST`` for the session, as google-cloud-storage expects.
    """
    emulator = gcs_emulator()
    _require(emulator, f"{emulator.endpoint}/storage/v1/b")
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.endpoint
    yield emulator
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def azurite() -> Emulator:
    """Azurite's blob service, or a skip (a failure in CI) if it does not answer."""
    emulator = azure_emulator()
    return _require(emulator, f"{emulator.endpoint}?comp=list")


@pytest.fixture
def unique_prefix() -> str:
    """A prefix no other test uses: ``test-<uuid>/``."""
    return f"test-{uuid.uuid4().hex}/"


async def purge_prefix(store: ObjectSessionStore, *, concurrency: int = 16) -> None:
    """Delete every object under the store's prefix (its own and foreign ones).

    Up to ``concurrency`` deletes run at once. Raises what a delete raises, except
    that an object already gone is fine.
    """
    await store._ensure_open()
    limit = asyncio.Semaphore(concurrency)

    async def delete(key: str) -> None:
        async with limit:
            await store._unless_missing(store._translated(store._delete(key, if_version=None)))

    token: str | None = None
    while True:
        page = await store._list_page(store.prefix, page_size=1000, token=token)
        await asyncio.gather(*(delete(obj.key) for obj in page.objects))
        token = page.next_token
        if not token:
            return


MakeStore = Callable[..., "ObjectSessionStore"]


async def _factory(
    build: Callable[..., ObjectSessionStore], prefix: str
) -> AsyncIterator[MakeStore]:
    made: list[ObjectSessionStore] = []

    def make(**options: Any) -> ObjectSessionStore:
        options.setdefault("prefix", prefix)
        store = build(**options)
        made.append(store)
        return store

    yield make
    cleaner = build(prefix=prefix)
    try:
        await purge_prefix(cleaner)
    finally:
        await cleaner.aclose()
        for store in made:
            await store.aclose()


def emulator_store(provider: str, emulator: Emulator, **options: Any) -> ObjectSessionStore:
    """A store of ``provider`` (a scheme of the registry: "s3", "gcs", "azure") on
    ``emulator``; options win."""
    cls: Any = PROVIDERS[provider].load(provider)
    store: ObjectSessionStore = cls(emulator.bucket, **{**emulator.options, **options})
    return store


def _builder(provider: str, emulator: Emulator) -> Callable[..., ObjectSessionStore]:
    return functools.partial(emulator_store, provider, emulator)


@_async_fixture
async def make_s3_store(localstack_s3: Emulator, unique_prefix: str) -> AsyncIterator[MakeStore]:
    """A factory of S3SessionStores on LocalStack sharing one unique prefix."""
    async for make in _factory(
        functools.partial(emulator_store, "s3", localstack_s3), unique_prefix
    ):
        yield make


@_async_fixture
async def make_gcs_store(fake_gcs: Emulator, unique_prefix: str) -> AsyncIterator[MakeStore]:
    """A factory of GCSSessionStores on fake-gcs-server sharing one unique prefix."""
    async for make in _factory(_builder("gcs", fake_gcs), unique_prefix):
        yield make


@_async_fixture
async def make_azure_store(azurite: Emulator, unique_prefix: str) -> AsyncIterator[MakeStore]:
    """A factory of AzureBlobSessionStores on Azurite sharing one unique prefix."""
    async for make in _factory(_builder("azure", azurite), unique_prefix):
        yield make


@pytest.fixture
def s3_store(make_s3_store: MakeStore) -> ObjectSessionStore:
    """An S3SessionStore on LocalStack with a unique prefix, emptied after the test."""
    return make_s3_store()


@pytest.fixture
def gcs_store(make_gcs_store: MakeStore) -> ObjectSessionStore:
    """A GCSSessionStore on fake-gcs-server with a unique prefix, emptied after the test."""
    return make_gcs_store()


@pytest.fixture
def azure_store(make_azure_store: MakeStore) -> ObjectSessionStore:
    """An AzureBlobSessionStore on Azurite with a unique prefix, emptied after the test."""
    return make_azure_store()

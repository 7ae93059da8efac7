"""The store fixtures: a unique prefix per test, factories of stores on each emulator
(``make_<store>_store``), one store each (``<store>_store``), emptied after the test,
and :func:`emulator_store` / :func:`purge_prefix` for code outside fixtures."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from sessionstore.registry import PROVIDERS
from sessionstore.testing.emulators import Emulator

try:  # async fixtures that work whatever the user's pytest-asyncio mode is
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio they cannot run anyway
    _async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = [
    "MakeStore",
    "azure_store",
    "emulator_store",
    "gcs_store",
    "make_azure_store",
    "make_gcs_store",
    "make_moto_s3_store",
    "make_s3_store",
    "moto_s3_store",
    "purge_prefix",
    "s3_store",
    "unique_prefix",
]


@pytest.fixture
def unique_prefix() -> str:
    """A prefix no other test uses: ``test-<uuid>/``."""
    return f"test-{uuid.uuid4().hex}/"


async def purge_prefix(store: ObjectSessionStore, *, concurrency: int = 16) -> None:
    """Delete every object the store lists directly under its prefix (its sessions and
    foreign objects; not keys below a deeper ``/``).

    :meth:`ObjectSessionStore.purge_prefix`, up to ``concurrency`` deletes at once,
    each under the store's retry policy. Raises what a delete raises, except that an
    object already gone is fine.
    """
    await store.purge_prefix(concurrency=concurrency)


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
    async for make in _factory(_builder("s3", localstack_s3), unique_prefix):
        yield make


@_async_fixture
async def make_moto_s3_store(moto_s3: Emulator, unique_prefix: str) -> AsyncIterator[MakeStore]:
    """A factory of S3SessionStores on moto server sharing one unique prefix."""
    async for make in _factory(_builder("s3", moto_s3), unique_prefix):
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
def moto_s3_store(make_moto_s3_store: MakeStore) -> ObjectSessionStore:
    """An S3SessionStore on moto server with a unique prefix, emptied after the test."""
    return make_moto_s3_store()


@pytest.fixture
def gcs_store(make_gcs_store: MakeStore) -> ObjectSessionStore:
    """A GCSSessionStore on fake-gcs-server with a unique prefix, emptied after the test."""
    return make_gcs_store()


@pytest.fixture
def azure_store(make_azure_store: MakeStore) -> ObjectSessionStore:
    """An AzureBlobSessionStore on Azurite with a unique prefix, emptied after the test."""
    return make_azure_store()

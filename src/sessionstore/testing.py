"""Pytest fixtures for tests against the local cloud (LocalStack, fake-gcs-server, Azurite,
moto server).

Installed as a pytest plugin (entry point ``sessionstore``), so a project that has
``sessionstore`` installed can use these fixtures without importing anything::

    async def test_my_agent(s3_store):
        await s3_store.save("s1", {"tick": 1})
        assert await s3_store.has("s1")

Where the emulators come from (``--sessionstore-localcloud=MODE`` or the ini key
``sessionstore_localcloud``):

- an endpoint configured in the environment is always used as it is:
  ``SESSIONSTORE_TEST_S3_ENDPOINT`` or ``AWS_ENDPOINT_URL`` (LocalStack),
  ``SESSIONSTORE_TEST_MOTO_ENDPOINT`` (moto), ``SESSIONSTORE_TEST_GCS_ENDPOINT`` or
  ``STORAGE_EMULATOR_HOST``, ``SESSIONSTORE_TEST_AZURE_CONNECTION_STRING`` or
  ``AZURE_STORAGE_CONNECTION_STRING`` (a Docker or CI-service setup plugs in here);
  one that ``python -m sessionstore.localcloud up`` or ``env`` merely printed (its
  export lines mark them) is used while it answers, and otherwise treated as unset;
- ``auto`` (the default) starts the emulators that the session's tests need with
  :mod:`sessionstore.localcloud`, once per test session, and stops them at its end
  (under pytest-xdist the workers share them: the last one out stops them; a SIGTERM
  ends the session as Ctrl-C does, so they are stopped then too); one that cannot
  start skips the tests that need it, with the reason;
- ``require``: as ``auto``, but a test whose emulator cannot start fails;
- ``off``: nothing is started; an emulator without a configured endpoint is looked
  for on its default port.

An emulator that does not answer skips its tests with a hint; with
``SESSIONSTORE_REQUIRE_EMULATORS=1`` (CI) it fails them instead. Each store fixture
gets a unique prefix, and every object under it is deleted after the test.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from sessionstore.localcloud import LocalCloud, LocalCloudError, by_name, printed_by_localcloud
from sessionstore.localcloud.cloud import UnwritableDirectoryError
from sessionstore.localcloud.emulators import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    HOST,
    azure_connection_string,
)
from sessionstore.registry import PROVIDERS

try:  # async fixtures that work whatever the user's pytest-asyncio mode is
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio they cannot run anyway
    _async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_CONNECTION_STRING",
    "AZURITE_KEY",
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
    "make_moto_s3_store",
    "make_s3_store",
    "moto_emulator",
    "moto_s3",
    "moto_s3_store",
    "purge_prefix",
    "s3_emulator",
    "s3_store",
    "unique_prefix",
]

#: The published development account of Azurite (not a secret).
AZURITE_CONNECTION_STRING = azure_connection_string(10000)
DEFAULT_BUCKET = "sessionstore-test"
REQUIRE_ENV = "SESSIONSTORE_REQUIRE_EMULATORS"
MODES = ("auto", "require", "off")
_HINT = (
    "run pytest with --sessionstore-localcloud=auto, or start the local cloud with "
    '`eval "$(python -m sessionstore.localcloud up)"`'
)


@dataclass(frozen=True)
class Emulator:
    """Where one emulator answers and what the tests may use there."""

    name: str
    endpoint: str
    bucket: str
    options: dict[str, Any]


def _configured(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


#: Seconds an emulator may take to answer the probe. A stopped one refuses at once; a
#: busy one (Azurite on a loaded 2-core CI machine took ~3 s) must not fail the run.
_PROBE_TIMEOUT = 15.0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except OSError:
        return False


def _unavailable(message: str, mode: str) -> None:
    """Skip, or fail in ``require`` mode and with ``SESSIONSTORE_REQUIRE_EMULATORS=1``."""
    if mode == "require" or os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _require(emulator: Emulator, probe: str, mode: str, hint: str = _HINT) -> Emulator:
    if not _answers(probe):
        _unavailable(f"{emulator.name} does not answer at {emulator.endpoint}: {hint}", mode)
    return emulator


def _bucket() -> str:
    return os.environ.get("SESSIONSTORE_TEST_BUCKET") or DEFAULT_BUCKET


def _s3(name: str, endpoint: str) -> Emulator:
    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    return Emulator(name, endpoint, _bucket(), options)


_S3_VARIABLES = ("SESSIONSTORE_TEST_S3_ENDPOINT", "AWS_ENDPOINT_URL")
_MOTO_VARIABLES = ("SESSIONSTORE_TEST_MOTO_ENDPOINT",)
_GCS_VARIABLES = ("SESSIONSTORE_TEST_GCS_ENDPOINT", "STORAGE_EMULATOR_HOST")
_AZURE_VARIABLES = ("SESSIONSTORE_TEST_AZURE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING")


def s3_emulator(port: int | None = None) -> Emulator:
    """LocalStack's S3: on ``port`` if given, else ``SESSIONSTORE_TEST_S3_ENDPOINT``,
    ``AWS_ENDPOINT_URL``, or 127.0.0.1:4566."""
    endpoint = f"http://{HOST}:{port}" if port else _configured(*_S3_VARIABLES)
    return _s3("LocalStack S3", endpoint or f"http://{HOST}:4566")


def moto_emulator(port: int | None = None) -> Emulator:
    """moto server's S3: on ``port`` if given, else ``SESSIONSTORE_TEST_MOTO_ENDPOINT``,
    or 127.0.0.1:5000."""
    endpoint = f"http://{HOST}:{port}" if port else _configured(*_MOTO_VARIABLES)
    return _s3("moto S3", endpoint or f"http://{HOST}:5000")


def gcs_emulator(port: int | None = None) -> Emulator:
    """fake-gcs-server: on ``port`` if given, else ``SESSIONSTORE_TEST_GCS_ENDPOINT``,
    ``STORAGE_EMULATOR_HOST``, or 127.0.0.1:9023."""
    endpoint = f"http://{HOST}:{port}" if port else _configured(*_GCS_VARIABLES)
    return Emulator(
        "fake-gcs-server", endpoint or f"http://{HOST}:9023", _bucket(), {"project": "test"}
    )


def azure_emulator(port: int | None = None) -> Emulator:
    """Azurite's blob service: on ``port`` if given, else the connection string in
    ``SESSIONSTORE_TEST_AZURE_CONNECTION_STRING`` or ``AZURE_STORAGE_CONNECTION_STRING``,
    or Azurite's development account on 127.0.0.1:10000."""
    conn = azure_connection_string(port) if port else _configured(*_AZURE_VARIABLES)
    conn = conn or AZURITE_CONNECTION_STRING
    endpoint = next(
        (p.split("=", 1)[1] for p in conn.split(";") if p.startswith("BlobEndpoint=")),
        f"http://{HOST}:10000/devstoreaccount1",
    )
    return Emulator("Azurite", endpoint, _bucket(), {"connection_string": conn})


@dataclass(frozen=True)
class _Source:
    """Where an emulator fixture's emulator comes from."""

    cloud_name: str  # its name in sessionstore.localcloud
    variables: tuple[str, ...]  # the environment variables that configure it
    build: Callable[[int | None], Emulator]
    probe: str  # a path that answers when it is up

    def configured(self) -> str | None:
        """The variable the user set for it, if any (one the local cloud merely printed
        does not count)."""
        name = next((n for n in self.variables if os.environ.get(n)), None)
        return None if name is None or printed_by_localcloud(name) else name

    def printed_and_answering(self) -> Emulator | None:
        """The endpoint the local cloud printed for it, if one is set and answers."""
        name = next((n for n in self.variables if os.environ.get(n)), None)
        if name is None or not printed_by_localcloud(name):
            return None
        emulator = self.build(None)
        return emulator if _answers(emulator.endpoint.rstrip("/") + self.probe) else None


_SOURCES = {
    "localstack_s3": _Source("localstack", _S3_VARIABLES, s3_emulator, "/_localstack/health"),
    "moto_s3": _Source("moto", _MOTO_VARIABLES, moto_emulator, "/"),
    "fake_gcs": _Source("fake-gcs", _GCS_VARIABLES, gcs_emulator, "/storage/v1/b"),
    "azurite": _Source("azurite", _AZURE_VARIABLES, azure_emulator, "?comp=list"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--sessionstore-localcloud`` and the ini key ``sessionstore_localcloud``."""
    help_text = (
        "where the emulators of the sessionstore fixtures come from: auto (start what the "
        "tests need, the default), require (auto, and fail when one cannot start), off "
        "(only endpoints already configured)"
    )
    parser.getgroup("sessionstore").addoption(
        "--sessionstore-localcloud", choices=MODES, default=None, help=help_text
    )
    parser.addini("sessionstore_localcloud", help_text, default="auto")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a bad ``sessionstore_localcloud`` before any test runs."""
    _mode(config)


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("sessionstore_localcloud", None) or config.getini(
        "sessionstore_localcloud"
    )
    if mode not in MODES:
        raise pytest.UsageError(f"sessionstore_localcloud = {mode!r}: use one of {MODES}")
    return str(mode)


def _say(config: pytest.Config) -> Callable[[str], None]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:  # an xdist worker: its output would be lost anyway
        return lambda message: None
    return lambda message: reporter.write_line(f"sessionstore localcloud: {message}")


class _SessionCloud:
    """The emulators this test session started or joined, released at its end."""

    def __init__(self, config: pytest.Config, needed: set[str]) -> None:
        self.cloud = LocalCloud(say=_say(config))
        self.needed = needed  # the cloud names the collected tests need
        self.asked: set[str] = set()
        self.failures: dict[str, str] = {}
        self._starting = False  # a SIGTERM then waits until the pid files are written
        self._terminated = False
        self._previous: Any = None

    def catch_sigterm(self) -> None:
        """Make SIGTERM (``timeout``, a cancelled CI job) end the session as Ctrl-C does,
        so that its teardown stops the emulators (only pytest's main thread can)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self._terminated = True
        if not self._starting:
            raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")

    def port(self, name: str) -> int:
        """The port of emulator ``name``; starts it, with every other emulator the
        session needs, on first use. Raises LocalCloudError if it cannot start."""
        if name not in self.asked:
            batch = ({name} | self.needed) - self.asked
            self.asked |= batch
            self._starting = True
            try:
                self.cloud.up(sorted(batch), holder=os.getpid())
            except LocalCloudError as exc:
                self.failures.update(exc.failures)
            finally:
                self._starting = False
            if self._terminated:
                raise KeyboardInterrupt("SIGTERM")
        if name in self.failures:
            raise LocalCloudError({name: self.failures[name]})
        return self.cloud.port(by_name(name))

    def release(self) -> None:
        """Stop what no other live session holds any more."""
        self._starting = True  # a SIGTERM now must not cut the release short
        try:
            if self.asked:
                with contextlib.suppress(UnwritableDirectoryError):  # nothing was started
                    self.cloud.release(os.getpid())
        finally:
            if self._previous is not None:
                signal.signal(signal.SIGTERM, self._previous)


@pytest.fixture(scope="session")
def sessionstore_localcloud(request: pytest.FixtureRequest) -> Iterator[_SessionCloud]:
    """The local cloud of this test session (started lazily, released at its end)."""
    fixtures = {
        name for item in request.session.items for name in getattr(item, "fixturenames", ())
    }
    sources = [_SOURCES[f] for f in fixtures if f in _SOURCES]
    needed = {
        source.cloud_name
        for source in sources
        if source.configured() is None and source.printed_and_answering() is None
    }
    session = _SessionCloud(request.config, needed)
    session.catch_sigterm()
    yield session
    session.release()


def _emulator(request: pytest.FixtureRequest, fixture: str) -> Emulator:
    source = _SOURCES[fixture]
    mode = _mode(request.config)
    hint = _HINT
    if mode == "off":
        emulator = source.build(None)
    elif (variable := source.configured()) is not None:
        emulator = source.build(None)
        hint = f"it is configured by {variable} (unset it to let the plugin start one)"
    elif (printed := source.printed_and_answering()) is not None:
        emulator = printed
    else:
        cloud: _SessionCloud = request.getfixturevalue("sessionstore_localcloud")
        try:
            emulator = source.build(cloud.port(source.cloud_name))
        except LocalCloudError as exc:
            _unavailable(f"the local cloud could not start {exc}", mode)
    return _require(emulator, emulator.endpoint.rstrip("/") + source.probe, mode, hint)


@pytest.fixture(scope="session")
def localstack_s3(request: pytest.FixtureRequest) -> Emulator:
    """LocalStack's S3, or a skip (a failure in CI) if it does not answer."""
    return _emulator(request, "localstack_s3")


@pytest.fixture(scope="session")
def moto_s3(request: pytest.FixtureRequest) -> Emulator:
    """moto server's S3, or a skip (a failure in CI) if it does not answer."""
    return _emulator(request, "moto_s3")


@pytest.fixture(scope="session")
def fake_gcs(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """fake-gcs-server, or a skip (a failure in CI) if it does not answer.

    Sets ``STORAGE_EMULATOR_HOST`` for the session, as google-cloud-storage expects.
    """
    emulator = _emulator(request, "fake_gcs")
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.endpoint
    yield emulator
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def azurite(request: pytest.FixtureRequest) -> Emulator:
    """Azurite's blob service, or a skip (a failure in CI) if it does not answer."""
    return _emulator(request, "azurite")


@pytest.fixture
def unique_prefix() -> str:
    """A prefix no other test uses: ``test-<uuid>/``."""
    return f"test-{uuid.uuid4().hex}/"


async def purge_prefix(store: ObjectSessionStore, *, concurrency: int = 16) -> None:
    """Delete every object under the store's prefix (its own and foreign ones).

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
    async for make in _factory(
        functools.partial(emulator_store, "s3", localstack_s3), unique_prefix
    ):
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

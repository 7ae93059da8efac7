"""The pytest side of the plugin: its option and ini key (the modes), the session's
local cloud, and the emulator fixtures (``localstack_s3``, ``moto_s3``, ``fake_gcs``,
``azurite``) that find or start each emulator.

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
``SESSIONSTORE_REQUIRE_EMULATORS=1`` (CI) it fails them instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sessionstore.localcloud import LocalCloud, LocalCloudError, by_name
from sessionstore.localcloud.cloud import UnwritableDirectoryError
from sessionstore.testing.emulators import SOURCES, Emulator, answers

__all__ = [
    "MODES",
    "REQUIRE_ENV",
    "azurite",
    "fake_gcs",
    "localstack_s3",
    "moto_s3",
    "pytest_addoption",
    "pytest_configure",
    "sessionstore_localcloud",
]

REQUIRE_ENV = "SESSIONSTORE_REQUIRE_EMULATORS"
MODES = ("auto", "require", "off")
_HINT = (
    "run pytest with --sessionstore-localcloud=auto, or start the local cloud with "
    '`eval "$(python -m sessionstore.localcloud up)"`'
)


def _unavailable(message: str, mode: str) -> None:
    """Skip, or fail in ``require`` mode and with ``SESSIONSTORE_REQUIRE_EMULATORS=1``."""
    if mode == "require" or os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _require(emulator: Emulator, probe: str, mode: str, hint: str = _HINT) -> Emulator:
    if not answers(probe):
        _unavailable(
            f"the {emulator.name} emulator does not answer at {emulator.endpoint}: {hint}", mode
        )
    return emulator


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
    sources = [SOURCES[f] for f in fixtures if f in SOURCES]
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
    source = SOURCES[fixture]
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

"""Fixtures of the reliability suite: one emulator per provider parameter."""

from typing import Any

import pytest

from sessionstore.testing import Emulator
from tests.reliability.scenario import PROVIDERS

_EMULATOR_FIXTURE = {"s3": "localstack_s3", "gcs": "fake_gcs", "azure": "azurite"}


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    """Each test runs once per cloud provider."""
    return str(request.param)


def emulator_of(provider: str, request: pytest.FixtureRequest) -> Emulator:
    """The running emulator of ``provider`` (its session fixture: skips if it is down)."""
    return request.getfixturevalue(_EMULATOR_FIXTURE[provider])  # type: ignore[no-any-return]


@pytest.fixture
def emulator(provider: str, request: pytest.FixtureRequest) -> Emulator:
    """The running emulator of ``provider``."""
    return emulator_of(provider, request)


@pytest.fixture
def make_store(provider: str, request: pytest.FixtureRequest) -> Any:
    """The ``make_<provider>_store`` factory of sessionstore.testing."""
    return request.getfixturevalue(f"make_{provider}_store")

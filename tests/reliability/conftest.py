"""Fixtures of the reliability suite: one emulator per target parameter.

S3 has two targets, LocalStack and moto server (a second S3 implementation, which
enforces conditional deletes as AWS does), so every S3 case runs on both.
"""

from typing import Any

import pytest

from sessionstore.testing import Emulator

#: target -> (provider, its emulator fixture, its store factory fixture)
TARGETS = {
    "s3": ("s3", "localstack_s3", "make_s3_store"),
    "s3-moto": ("s3", "moto_s3", "make_moto_s3_store"),
    "gcs": ("gcs", "fake_gcs", "make_gcs_store"),
    "azure": ("azure", "azurite", "make_azure_store"),
}
_EMULATOR_FIXTURE = {"s3": "localstack_s3", "gcs": "fake_gcs", "azure": "azurite"}


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    """Each test runs once per cloud provider, and once more on moto for S3."""
    return str(request.param)


@pytest.fixture
def provider(target: str) -> str:
    """The cloud provider of the target ("s3", "gcs" or "azure")."""
    return TARGETS[target][0]


def emulator_of(provider: str, request: pytest.FixtureRequest) -> Emulator:
    """The running emulator of ``provider`` (its session fixture: skips if it is down)."""
    return request.getfixturevalue(_EMULATOR_FIXTURE[provider])  # type: ignore[no-any-return]


@pytest.fixture
def emulator(target: str, request: pytest.FixtureRequest) -> Emulator:
    """The running emulator of the target."""
    return request.getfixturevalue(TARGETS[target][1])  # type: ignore[no-any-return]


@pytest.fixture
def make_store(target: str, request: pytest.FixtureRequest) -> Any:
    """The target's ``make_*_store`` factory of sessionstore.testing."""
    return request.getfixturevalue(TARGETS[target][2])

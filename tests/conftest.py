"""Fixtures shared by the contract suite (the emulator fixtures come from
``sessionstore.testing``, loaded as a pytest plugin)."""

from __future__ import annotations

import pytest

from sessionstore import ObjectSessionStore
from tests.contract import MakeStore

pytest_plugins = ["pytester"]


@pytest.fixture
def store(make_store: MakeStore) -> ObjectSessionStore:
    """A store with default options on the test's backend and prefix."""
    return make_store()

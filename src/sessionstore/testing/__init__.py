"""Pytest fixtures for tests against the local cloud (LocalStack, fake-gcs-server, Azurite,
moto server).

Installed as a pytest plugin (entry point ``sessionstore`` names this package), so a
project that has ``sessionstore`` installed can use these fixtures without importing
anything::

    async def test_my_agent(s3_store):
        await s3_store.save("s1", {"tick": 1})
        assert await s3_store.has("s1")

The modules, by concern: :mod:`~sessionstore.testing.emulators` (where each emulator
answers), :mod:`~sessionstore.testing.plugin` (the pytest option, the session's local
cloud and the emulator fixtures; its docstring says where the emulators come from) and
:mod:`~sessionstore.testing.stores` (the store fixtures and factories). This package
imports the hooks and every fixture, which is what makes it the plugin, and re-exports
the public names. Each store fixture gets a unique prefix, and every object under it
is deleted after the test.

``s3_emulator``, ``moto_emulator``, ``gcs_emulator`` and ``azure_emulator`` are
deprecated aliases of ``localstack_s3_emulator``, ``moto_s3_emulator``,
``fake_gcs_emulator`` and ``azurite_emulator`` (each emulator has one name: its
fixture's).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from sessionstore.localcloud.emulators import AZURITE_ACCOUNT, AZURITE_KEY
from sessionstore.testing.emulators import (
    AZURITE_CONNECTION_STRING,
    Emulator,
    azurite_emulator,
    fake_gcs_emulator,
    localstack_s3_emulator,
    moto_s3_emulator,
)
from sessionstore.testing.plugin import (  # the hooks and fixtures pytest loads from here
    azurite,
    fake_gcs,
    localstack_s3,
    moto_s3,
    pytest_addoption,
    pytest_configure,
    sessionstore_localcloud,
)
from sessionstore.testing.stores import (
    azure_store,
    emulator_store,
    gcs_store,
    make_azure_store,
    make_gcs_store,
    make_moto_s3_store,
    make_s3_store,
    moto_s3_store,
    purge_prefix,
    s3_store,
    unique_prefix,
)

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_CONNECTION_STRING",
    "AZURITE_KEY",
    "Emulator",
    "azure_store",
    "azurite",
    "azurite_emulator",
    "emulator_store",
    "fake_gcs",
    "fake_gcs_emulator",
    "gcs_store",
    "localstack_s3",
    "localstack_s3_emulator",
    "make_azure_store",
    "make_gcs_store",
    "make_moto_s3_store",
    "make_s3_store",
    "moto_s3",
    "moto_s3_emulator",
    "moto_s3_store",
    "purge_prefix",
    "s3_store",
    "unique_prefix",
]

_HOOKS = (pytest_addoption, pytest_configure, sessionstore_localcloud)

#: Deprecated name -> the emulator's one name.
_DEPRECATED: dict[str, Callable[[int | None], Emulator]] = {
    "s3_emulator": localstack_s3_emulator,
    "moto_emulator": moto_s3_emulator,
    "gcs_emulator": fake_gcs_emulator,
    "azure_emulator": azurite_emulator,
}


def __getattr__(name: str) -> Any:
    """The deprecated names of the emulator functions, with a DeprecationWarning."""
    new = _DEPRECATED.get(name)
    if new is None:
        raise AttributeError(f"module 'sessionstore.testing' has no attribute {name!r}")
    warnings.warn(
        f"sessionstore.testing.{name} is deprecated: use {new.__name__}",
        DeprecationWarning,
        stacklevel=2,
    )
    return new

"""sessionstore: durable homes for AI-agent session snapshots.

Every built-in store of :mod:`sessionstore.registry` but the file and memory stores
(the cloud stores, ``SQLiteSessionStore``) is imported on first access, so
``import sessionstore`` loads no cloud SDK (nor reads the entry
points of third-party providers, which are opened by URL only).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sessionstore.base import ObjectSessionStore
from sessionstore.codec import JsonSerializer, Serializer
from sessionstore.deadline import deadline
from sessionstore.errors import (
    ConflictError,
    InvalidSessionIdError,
    SessionStoreError,
    SnapshotDecodeError,
    SnapshotEncodeError,
    SnapshotTooLargeError,
    StaleSnapshotError,
    StoreAccessError,
    StoreConfigError,
    StoreInUseError,
    StoreUnavailableError,
)
from sessionstore.registry import lazy_classes
from sessionstore.retry import RetryPolicy
from sessionstore.stores.file import FileSessionStore
from sessionstore.stores.memory import MemorySessionStore
from sessionstore.sync import SyncSessionStore, open_store_sync
from sessionstore.types import SessionInfo, SessionSnapshot, SessionStore, Versioned
from sessionstore.url import open_store

if TYPE_CHECKING:  # type checkers see the classes that __getattr__ loads lazily
    from sessionstore.stores.azure import AzureBlobSessionStore
    from sessionstore.stores.gcs import GCSSessionStore
    from sessionstore.stores.s3 import S3SessionStore
    from sessionstore.stores.sqlite import SQLiteSessionStore

__all__ = [
    "AzureBlobSessionStore",
    "ConflictError",
    "FileSessionStore",
    "GCSSessionStore",
    "InvalidSessionIdError",
    "JsonSerializer",
    "MemorySessionStore",
    "ObjectSessionStore",
    "RetryPolicy",
    "S3SessionStore",
    "SQLiteSessionStore",
    "Serializer",
    "SessionInfo",
    "SessionSnapshot",
    "SessionStore",
    "SessionStoreError",
    "SnapshotDecodeError",
    "SnapshotEncodeError",
    "SnapshotTooLargeError",
    "StaleSnapshotError",
    "StoreAccessError",
    "StoreConfigError",
    "StoreInUseError",
    "StoreUnavailableError",
    "SyncSessionStore",
    "Versioned",
    "deadline",
    "open_store",
    "open_store_sync",
]

_LAZY = lazy_classes()
__all__ += sorted(name for name in _LAZY if name not in __all__)  # a new built-in store


def __getattr__(name: str) -> Any:
    """Import a built-in store on first access (PEP 562); the registry's built-in table
    names them."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sessionstore' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

"""Exit codes of the ``sessionstore`` command, one per kind of error."""

from __future__ import annotations

from sessionstore.errors import (
    InvalidSessionIdError,
    SessionStoreError,
    SnapshotEncodeError,
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
)

__all__ = ["exit_code"]

_EXIT = {
    StoreConfigError: 2,
    InvalidSessionIdError: 2,  # a bad id or snapshot is a usage error too
    SnapshotEncodeError: 2,
    StoreAccessError: 3,
    StoreUnavailableError: 4,
}


def exit_code(exc: SessionStoreError) -> int:
    """2 configuration or usage, 3 access refused, 4 unavailable, 1 anything else."""
    return next((code for kind, code in _EXIT.items() if isinstance(exc, kind)), 1)

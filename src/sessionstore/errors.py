"""The exception tree of sessionstore.

Every error a store raises is a :class:`SessionStoreError`::

    SessionStoreError
    ├── InvalidSessionIdError      (also ValueError)   bad id; no request made
    ├── SnapshotEncodeError        (also ValueError)   not a JSON object; nothing written
    ├── SnapshotDecodeError                            stored bytes are not a snapshot
    ├── SnapshotTooLargeError                          over max_snapshot_bytes (save or load)
    ├── ConflictError                                  if_version / if_absent failed
    │   └── StaleSnapshotError                         reject_stale refused an older tick
    ├── StoreConfigError           (also ValueError)   bad URL, option, or missing extra
    ├── StoreAccessError                               401/403, missing bucket/container
    ├── StoreUnavailableError                          transient failures, or the caller's deadline
    └── StoreInUseError            (also RuntimeError) no longer raised (kept importable)

Messages name the provider, the bucket or container, the key and the operation, and
never a credential, signature or SAS token. The SDK exception that caused an error is
chained as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "InvalidSessionIdError",
    "SessionStoreError",
    "SnapshotDecodeError",
    "SnapshotEncodeError",
    "SnapshotTooLargeError",
    "StaleSnapshotError",
    "StoreAccessError",
    "StoreConfigError",
    "StoreInUseError",
    "StoreUnavailableError",
]


class SessionStoreError(Exception):
    """Base class of every error raised by sessionstore."""


class InvalidSessionIdError(SessionStoreError, ValueError):
    """The session id is not a non-empty ``str`` whose key fits the provider limit.

    Raised before any request is made.
    """


class SnapshotEncodeError(SessionStoreError, ValueError):
    """The snapshot is not JSON: not an object, NaN/Infinity, a non-JSON type, a cycle.

    Raised before any request is made, so nothing is written.
    """


class SnapshotDecodeError(SessionStoreError):
    """The stored bytes are not a snapshot (corrupt, truncated, not JSON, bad codec)."""


class SnapshotTooLargeError(SessionStoreError):
    """The snapshot is bigger than ``max_snapshot_bytes``, on save or on load.

    On save nothing is written; on load the body is not read (or decompressed) further.
    """


class ConflictError(SessionStoreError):
    """A conditional write or delete (``if_version`` / ``if_absent``) found another version."""


class StaleSnapshotError(ConflictError):
    """``reject_stale`` refused a snapshot whose ``tick`` is older than the stored one."""


class StoreConfigError(SessionStoreError, ValueError):
    """A bad URL, an unknown or invalid option, or a missing extra; the message says the fix."""


class StoreAccessError(SessionStoreError):
    """The store refused access (401/403) or the bucket/container does not exist."""


class StoreUnavailableError(SessionStoreError):
    """Transient failures (throttling, 5xx, timeouts, resets) outlasted the retry policy."""


class StoreInUseError(SessionStoreError, RuntimeError):
    """No longer raised: kept so that code catching it still imports.

    Stores used to refuse a second event loop running at the same time; now each live
    loop gets an SDK client of its own (docs/DESIGN.md, "Event loops, the sync API and
    deadlines").
    """

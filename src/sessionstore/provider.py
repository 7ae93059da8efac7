"""What a provider author needs, and nothing else (docs/DESIGN.md, "Adding a provider").

A provider module subclasses :class:`sessionstore.base.ObjectSessionStore` and
implements its primitives with the types below. When an SDK call fails, the provider's
``_classify`` names one of the private fault types; the base raises it, chained to the
SDK's exception, and from there on uses plain ``except`` clauses. A primitive that
detects a condition itself (the file and memory stores) raises the fault directly.

A provider that can also make its requests with a synchronous SDK client implements
``_open_sync`` / ``_close_sync``; :func:`sync_call` then tells its primitives which
client the current call uses (docs/DESIGN.md, "Event loops, the sync API and
deadlines").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

from sessionstore.codec import Compression, Serializer
from sessionstore.errors import SessionStoreError
from sessionstore.retry import RetryPolicy

__all__ = [
    "META_ENCODING",
    "META_TICK",
    "META_WRITE_ID",
    "ListedObject",
    "ObjectInfo",
    "Page",
    "StoreOptions",
    "StoredObject",
    "http_fault",
    "redact",
    "sync_call",
]

#: Object metadata written by the base (providers may rename them to fit their rules).
META_ENCODING = "sessionstore-encoding"
META_TICK = "sessionstore-tick"
META_WRITE_ID = "sessionstore-write-id"

#: Set by SyncSessionStore for the calls it runs on the caller's thread.
SYNC_CALL: ContextVar[bool] = ContextVar("sessionstore_sync_call", default=False)


def sync_call() -> bool:
    """Whether the running store call came through the sync API with a sync SDK client.

    Then the primitives use the store's synchronous client (``_open_sync``) and make
    their blocking calls through ``ObjectSessionStore._blocking``.
    """
    return SYNC_CALL.get()


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD (or the headers of a GET) says about an object."""

    version: str
    last_modified: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A whole object as a GET returns it."""

    body: bytes
    info: ObjectInfo


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One entry of a prefix listing."""

    key: str
    last_modified: datetime | None = None
    version: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a prefix listing and the token of the next page, if any."""

    objects: list[ListedObject]
    next_token: str | None = None


class StoreOptions(TypedDict, total=False):
    """Keyword options every store takes (docs/DESIGN.md, "Configuration")."""

    retry: RetryPolicy
    compression: Compression | None
    compress_min_bytes: int
    max_snapshot_bytes: int
    ttl: timedelta | None
    reject_stale: bool
    serializer: Serializer | None


# ---------------------------------------------------------------------- faults


class _Fault(SessionStoreError):
    """A primitive failed; the base maps what escapes onto the public error tree.

    ``detail`` is a short, secret-free description (code and status) for messages;
    ``attempts`` is set by the retry loop to the number of attempts made. A fault is a
    :class:`SessionStoreError`, so one that no operation interprets (a 412 on a read)
    still reaches the caller inside the public tree, with the operation in its message.
    """

    attempts = 1

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail or type(self).__name__


class _NotFound(_Fault):
    """The object (not the bucket) does not exist."""


class _PreconditionFailed(_Fault):
    """A conditional request (``if_version`` / ``if_absent``) found another state."""


class _Transient(_Fault):
    """Throttling, 5xx, a timeout or a broken connection: retried by the base."""


class _AccessDenied(_Fault):
    """401/403, bad credentials, or a missing bucket or container."""


class _Failed(_Fault):
    """Anything else: fails at once."""


#: What an HTTP status means, the same for every cloud.
_STATUS_FAULTS: Mapping[int, type[_Fault]] = {
    401: _AccessDenied,
    403: _AccessDenied,
    404: _NotFound,
    408: _Transient,
    412: _PreconditionFailed,
    429: _Transient,
    500: _Transient,
    502: _Transient,
    503: _Transient,
    504: _Transient,
}


def http_fault(
    status: int | None, code: str = "", codes: Mapping[str, type[_Fault]] | None = None
) -> type[_Fault]:
    """The fault of an HTTP error: the service's error ``code`` first, then its status."""
    if codes and code in codes:
        return codes[code]
    return _STATUS_FAULTS.get(status or 0, _Failed)


_SECRET_PATTERNS = re.compile(
    r"(?i)((?:sig|signature|x-amz-signature|x-amz-security-token|accountkey|sharedaccesssignature"
    r"|se|sp|sv|skoid|sktid|skv|access_token|client_secret)=['\"]?)[^&;\s'\"]+"
)


def redact(text: str) -> str:
    """Blank out anything that looks like a signature, key or token in ``text``."""
    return _SECRET_PATTERNS.sub(r"\1***", text)

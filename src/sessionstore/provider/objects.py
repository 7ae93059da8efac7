"""The values that cross the provider interface: objects, listings, conditions,
capabilities and the options every store takes (docs/DESIGN.md, "Provider rules")."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

from sessionstore.codec import Compression, Serializer
from sessionstore.provider.faults import PreconditionFailed
from sessionstore.retry import RetryPolicy

__all__ = [
    "ABSENT",
    "META_ENCODING",
    "META_TICK",
    "META_WRITE_ID",
    "SYNC_CALL",
    "UNCONDITIONAL",
    "Capabilities",
    "Condition",
    "ListedObject",
    "ObjectInfo",
    "Page",
    "StoreOptions",
    "StoredObject",
    "sync_call",
]

#: Object metadata written by the base; a provider must give it back from ``_head`` and
#: ``_get`` as written (it may rename the keys to fit its rules, and back).
META_ENCODING = "sessionstore-encoding"
META_TICK = "sessionstore-tick"
META_WRITE_ID = "sessionstore-write-id"

#: Set by the sync API's caller's-thread runner for the calls it runs.
SYNC_CALL: ContextVar[bool] = ContextVar("sessionstore_sync_call", default=False)


def sync_call() -> bool:
    """Whether the running store call came through the sync API with a sync SDK client.

    Then the primitives use the store's synchronous client (``_open_sync``) and make
    their blocking calls through ``_blocking``.
    """
    return SYNC_CALL.get()


@dataclass(frozen=True, slots=True)
class Condition:
    """What a ``_put`` or ``_delete`` requires of the stored object, in the one request.

    :data:`UNCONDITIONAL` (nothing), :data:`ABSENT` (no object at the key:
    ``If-None-Match: *``) or ``Condition(version=token)`` (the object is at that
    version: ``If-Match``). A primitive that finds another state raises
    :class:`~sessionstore.provider.PreconditionFailed` (or ``NotFound``).

    Raises:
        ValueError: both a version and ``absent`` are given.
    """

    version: str | None = None
    absent: bool = False

    def __post_init__(self) -> None:
        if self.version is not None and self.absent:
            raise ValueError("a condition is a version or absent, not both")

    def require(self, current: str | None) -> None:
        """For a store that checks conditions itself (under its own lock): raise
        :class:`~sessionstore.provider.PreconditionFailed` unless an object at version
        ``current`` (None: no object) meets the condition."""
        if self.absent and current is not None:
            raise PreconditionFailed("exists")
        if self.version is not None and current != self.version:
            raise PreconditionFailed("version mismatch")

    def __str__(self) -> str:
        """What the condition requires, as a conflict message says it is not so."""
        if self.absent:
            return "it already exists"
        return f"it is not at version {self.version}"


UNCONDITIONAL = Condition()
ABSENT = Condition(absent=True)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store class declares about itself, in one place (docs/DESIGN.md,
    "Provider rules"); the contract suite checks each against what the store does.

    Attributes:
        sync_client: the store implements ``_open_sync``/``_close_sync`` (or, as a
            ``ClientStore``, ``_build_sync_client``) with a synchronous client, so the
            sync API runs its calls on the caller's thread. Without it the sync API
            runs the store on a private event-loop thread.
        client_follows_loop: the async client belongs to the event loop it was built
            on (aiohttp-based SDKs), so each loop gets a client of its own; false when
            one client (or none) serves every loop.
        shared_across_processes: two processes that open the same URL see one
            another's sessions, and sessions outlive the process (false for memory).
    """

    sync_client: bool = False
    client_follows_loop: bool = True
    shared_across_processes: bool = True


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

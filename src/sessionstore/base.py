"""ObjectSessionStore: the public API, built in layers on a few provider primitives.

A provider implements only the primitives of :class:`sessionstore.provider.Primitives`
and declares its :class:`~sessionstore.provider.Capabilities`. Everything else lives
once, in one layer each (docs/DESIGN.md, "Layers"), every layer using only those below
it:

- :mod:`sessionstore.calls`: translation, retries, deadline, logging, error mapping;
- :mod:`sessionstore.lifecycle`: clients per event loop, the sync client, fork;
- :mod:`sessionstore.write`: ``save`` and ``delete`` with one condition value;
- :mod:`sessionstore.listing`: ``list``, ``iter_*``, ``purge_expired``, ``purge_prefix``;
- this module: configuration, the reads, and the store as a context manager.
"""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Self

from sessionstore.codec import Codec, Compression, Serializer
from sessionstore.errors import StoreConfigError
from sessionstore.keys import normalize_prefix
from sessionstore.listing import Listing, check_ttl
from sessionstore.retry import RetryPolicy
from sessionstore.types import SessionSnapshot, Versioned

__all__ = ["ObjectSessionStore"]


class ObjectSessionStore(Listing):
    """A session store over an object store: the one base class of every store.

    It implements the agentick ``SessionStore`` interface (``save``, ``load``,
    ``delete``, ``list``, ``has``) plus versioned reads, conditional writes, TTL and
    the stale-tick guard. Use it as ``async with store:`` or call :meth:`aclose`.

    Raises:
        StoreConfigError: an option is invalid (at construction).
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        retry: RetryPolicy | None = None,
        compression: Compression | None = None,
        compress_min_bytes: int = 1024,
        max_snapshot_bytes: int = 64 * 1024 * 1024,
        ttl: timedelta | None = None,
        reject_stale: bool = False,
        serializer: Serializer | None = None,
    ) -> None:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise StoreConfigError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        check_ttl(ttl, "ttl")
        self.prefix = normalize_prefix(prefix)
        self.retry = retry or RetryPolicy()
        self.ttl = ttl
        self.reject_stale = bool(reject_stale)
        self._codec = Codec(serializer, compression, compress_min_bytes, max_snapshot_bytes)
        self._start_lifecycle()

    async def load(self, session_id: str) -> SessionSnapshot | None:
        """Return the snapshot saved under ``session_id``, or None if absent or expired.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            SnapshotDecodeError: the stored object is not a snapshot.
            SnapshotTooLargeError: the stored object exceeds ``max_snapshot_bytes``.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        versioned = await self.load_versioned(session_id)
        return None if versioned is None else versioned.snapshot

    async def load_versioned(self, session_id: str) -> Versioned | None:
        """Like :meth:`load`, with the version token to pass to ``save(if_version=)``.

        Raises:
            The errors of :meth:`load`.
        """
        key = self._key(session_id)
        got = await self._get_or_none(key)
        if got is None or self._expired(got.info.last_modified):
            return None
        snapshot = self._codec.decode(got.body, self._where(key))
        return Versioned(snapshot, got.info.version)

    async def has(self, session_id: str) -> bool:
        """Whether a (non-expired) session is stored, with one HEAD request.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        key = self._key(session_id)
        info = await self._head_or_none(key)
        return info is not None and not self._expired(info.last_modified)

    async def __aenter__(self) -> Self:
        await self._call("open", None, _no_request)  # errors mapped like any operation
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r}, prefix={self.prefix!r})"


async def _no_request() -> None:
    """Nothing to do once ``_call`` has opened the store."""

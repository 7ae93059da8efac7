"""The listing layer: sessions found by prefix listing, and the bulk deletes built on it.

One request per page, never a read of the sessions (docs/DESIGN.md, "Listing").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from sessionstore.calls import cause
from sessionstore.errors import ConflictError, StoreAccessError, StoreConfigError
from sessionstore.keys import decode_key
from sessionstore.provider import UNCONDITIONAL, ListedObject, NotFound, Page
from sessionstore.types import SessionInfo
from sessionstore.write import WritePath

__all__ = ["Listing", "check_ttl"]


class Listing(WritePath):
    """``list``, ``iter_ids``, ``iter_info``, ``purge_expired`` and ``purge_prefix``."""

    async def _page(self, page_size: int, token: str | None) -> Page:
        """One listing page under the retry policy."""
        try:
            return await self._call(
                "list",
                None,
                lambda: self._translated(
                    self._list_page(self.prefix, page_size=page_size, token=token)
                ),
            )
        except NotFound as fault:  # a listing found no bucket or container
            raise StoreAccessError(
                f"{self._what('list', None)} failed ({fault.detail}):"
                f" {self.location} does not exist"
            ) from cause(fault)

    async def _listed(self, page_size: int) -> AsyncIterator[list[ListedObject]]:
        """Every page's objects, this store's and foreign ones."""
        if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise StoreConfigError(f"page_size must be an int in 1..1000, not {page_size!r}")
        token: str | None = None
        while True:
            page = await self._page(page_size, token)
            yield page.objects
            token = page.next_token
            if not token:
                return

    async def _pages(self, page_size: int) -> AsyncIterator[tuple[str, ListedObject]]:
        """(session id, listed object) of every session, expired or not."""
        async for objects in self._listed(page_size):
            for obj in objects:
                session_id = decode_key(self.prefix, obj.key)
                if session_id is not None:
                    yield session_id, obj

    async def iter_info(self, *, page_size: int = 1000) -> AsyncIterator[SessionInfo]:
        """Yield size, last-modified time and version of every non-expired session.

        Uses only the listing (one request per page), never a read of the sessions.

        Raises:
            The errors of :meth:`iter_ids`.
        """
        async for session_id, obj in self._pages(page_size):
            if not self._expired(obj.last_modified):
                yield SessionInfo(session_id, obj.size, obj.last_modified, obj.version)

    async def iter_ids(self, *, page_size: int = 1000) -> AsyncIterator[str]:
        """Yield every stored, non-expired session id, one listing page at a time.

        Objects under the prefix that are not in this store's format are skipped.

        Raises:
            StoreConfigError: ``page_size`` is not in 1..1000.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        async for info in self.iter_info(page_size=page_size):
            yield info.session_id

    async def list(self) -> list[str]:
        """Return every stored, non-expired session id, sorted.

        Raises:
            The errors of :meth:`iter_ids`.
        """
        return sorted([session_id async for session_id in self.iter_ids()])

    async def purge_expired(self, ttl: timedelta | None = None) -> int:
        """Delete every session not saved within ``ttl`` (default: the store's ttl).

        Each delete is conditional on the listed version, so a session saved again
        meanwhile survives. Returns the number of sessions deleted.

        Raises:
            StoreConfigError: ``ttl`` is not a positive timedelta, or neither it nor the
                store's ``ttl`` is set.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        check_ttl(ttl, "purge_expired() ttl")
        limit = ttl if ttl is not None else self.ttl
        if limit is None:
            raise StoreConfigError("purge_expired() needs a ttl: pass one or set ttl= on the store")
        now = self._now()
        expired = [
            (session_id, obj.version)
            async for session_id, obj in self._pages(1000)
            if obj.last_modified is not None and now - obj.last_modified > limit
        ]
        deleted = 0
        for session_id, version in expired:
            try:
                await self.delete(session_id, if_version=version)
            except ConflictError:
                continue
            deleted += 1
        return deleted

    async def purge_prefix(self, *, concurrency: int = 16) -> int:
        """Delete every object the store lists directly under its prefix: its sessions,
        expired or not, and other objects there (what test fixtures and tools clean up).
        Keys below a deeper ``/`` stay, and so do files the file store does not list
        (names not ending in ``.json``).

        Each delete is unconditional and runs under the retry policy, up to
        ``concurrency`` at once; an object already gone is fine. Returns the number of
        objects listed and deleted.

        Raises:
            StoreConfigError: ``concurrency`` is not a positive int.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        if not isinstance(concurrency, int) or concurrency < 1:
            raise StoreConfigError(f"concurrency must be a positive int, not {concurrency!r}")
        limit = asyncio.Semaphore(concurrency)

        async def delete(key: str) -> None:
            async with limit:
                await self._call("delete", key, lambda: self._delete_once(key, UNCONDITIONAL))

        deleted = 0
        async for objects in self._listed(1000):
            await asyncio.gather(*(delete(obj.key) for obj in objects))
            deleted += len(objects)
        return deleted


def check_ttl(ttl: object, what: str) -> None:
    """StoreConfigError unless ``ttl`` is None or a positive timedelta."""
    if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
        raise StoreConfigError(f"{what} must be a positive timedelta or None, not {ttl!r}")

"""SyncSessionStore: the store's API for synchronous code (Lambda, Flask, Django, scripts).

The store's logic is written once, as coroutines; a :class:`SyncSessionStore` runs them
through one of two runners (:mod:`sessionstore.runners`; docs/DESIGN.md, "Event loops,
the sync API and deadlines"), chosen once, when it wraps the store:

- **On the caller's thread** (every built-in cloud store and the file store): each call
  runs on a private event loop of the calling thread, marked as a sync-API call
  (:func:`sessionstore.provider.sync_call`), and the store makes its requests with the
  provider's *synchronous* SDK client (botocore, azure-storage-blob, google-cloud-storage),
  inline. A synchronous handler then loads no async SDK and no aiohttp, and a call costs
  no thread switch. The one sync client is built on first use, shared by every thread
  (the SDKs' sync clients are thread-safe) and kept warm across calls.
- **On a loop thread** (the memory store, a custom provider without ``_open_sync``, a
  store with an injected async client or session): one private event loop in a daemon
  thread, started on first use; every call is submitted to it and waited for.

Like a boto3 client, one instance may be shared by every thread of the process and
needs no closing: a module-level instance that is never closed lets the process exit
cleanly with nothing printed. A process forked after the store has been used (a
prefork server's workers) opens clients of its own on first use: the parent's
connections (and its loop thread) are not carried into the child. Errors, storage
format and semantics are those of the async API: a snapshot saved through one loads
through the other.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from sessionstore.forks import renew_in_child
from sessionstore.runners import OnCallersThread, OnLoopThread, Runner
from sessionstore.types import SessionInfo, SessionSnapshot, Versioned
from sessionstore.url import open_store

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = ["SyncSessionStore", "open_store_sync"]

T = TypeVar("T")


class SyncSessionStore:
    """Synchronous wrapper of a store: the same methods, errors and storage format.

    ``SyncSessionStore(store)`` wraps any store of this library; :func:`open_store_sync`
    builds one from a URL. Safe to share between threads; use it as ``with store:`` or
    call :meth:`close` (which closes the wrapped store too), or keep it at module level
    for the life of the process. The wrapped store stays usable through its async API.

    Do not call it from the store's own callbacks (its loop thread): that would wait on
    itself, and raises RuntimeError instead.
    """

    def __init__(self, store: ObjectSessionStore) -> None:
        self.store = store
        self._runner: Runner = (
            OnCallersThread(store) if store._serves_sync() else OnLoopThread(store)
        )
        renew_in_child(self)

    @property
    def on_callers_thread(self) -> bool:
        """Whether calls run on the caller's thread with the sync SDK (see the module)."""
        return self._runner.on_callers_thread

    def _forked(self) -> None:
        """In a forked child (:mod:`sessionstore.forks`): the runner forgets what the
        parent's threads ran for it (the store renews itself)."""
        self._runner.forked()

    # ------------------------------------------------------------------ running

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` as a sync-API call and wait for its result or error."""
        return self._runner.run(coro)

    def _iterate(self, iterator: AsyncIterator[T], chunk: int) -> Iterator[T]:
        items = cast(AsyncGenerator[T, None], iterator)

        async def take() -> list[T]:
            got: list[T] = []
            async for item in items:
                got.append(item)
                if len(got) >= chunk:
                    break
            return got

        try:
            while batch := self._run(take()):
                yield from batch
        finally:
            # Unless it has ended: a listing left open ends on the store's loop. An
            # iterator kept until exit finds it ended by its loop's shutdown.
            if getattr(items, "ag_frame", True) is not None:
                self._run(items.aclose())

    # ------------------------------------------------------------------ API

    @property
    def prefix(self) -> str:
        """The wrapped store's key prefix."""
        return self.store.prefix

    def save(
        self,
        session_id: str,
        snapshot: SessionSnapshot | Mapping[str, Any],
        *,
        if_version: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``snapshot`` and return the new version token (see the async ``save``).

        Raises:
            The errors of :meth:`ObjectSessionStore.save`.
        """
        return self._run(
            self.store.save(session_id, snapshot, if_version=if_version, if_absent=if_absent)
        )

    def load(self, session_id: str) -> SessionSnapshot | None:
        """Return the stored snapshot, or None if absent or expired.

        Raises:
            The errors of :meth:`ObjectSessionStore.load`.
        """
        return self._run(self.store.load(session_id))

    def load_versioned(self, session_id: str) -> Versioned | None:
        """Like :meth:`load`, with the version token for ``save(if_version=)``.

        Raises:
            The errors of :meth:`ObjectSessionStore.load`.
        """
        return self._run(self.store.load_versioned(session_id))

    def has(self, session_id: str) -> bool:
        """Whether a (non-expired) session is stored, with one HEAD request.

        Raises:
            The errors of :meth:`ObjectSessionStore.has`.
        """
        return self._run(self.store.has(session_id))

    def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Delete the session (absent is not an error); ``if_version`` makes it conditional.

        Raises:
            The errors of :meth:`ObjectSessionStore.delete`.
        """
        self._run(self.store.delete(session_id, if_version=if_version))

    def list(self) -> list[str]:
        """Every stored, non-expired session id, sorted.

        Raises:
            The errors of :meth:`ObjectSessionStore.list`.
        """
        return self._run(self.store.list())

    def iter_ids(self, *, page_size: int = 1000) -> Iterator[str]:
        """Yield every stored, non-expired session id, about one listing page at a time.

        Raises:
            The errors of :meth:`ObjectSessionStore.iter_ids`.
        """
        return self._iterate(self.store.iter_ids(page_size=page_size), page_size)

    def iter_info(self, *, page_size: int = 1000) -> Iterator[SessionInfo]:
        """Yield size, last-modified time and version of every non-expired session.

        Raises:
            The errors of :meth:`ObjectSessionStore.iter_info`.
        """
        return self._iterate(self.store.iter_info(page_size=page_size), page_size)

    def purge_expired(self, ttl: timedelta | None = None) -> int:
        """Delete every session not saved within ``ttl``; return how many were deleted.

        Raises:
            The errors of :meth:`ObjectSessionStore.purge_expired`.
        """
        return self._run(self.store.purge_expired(ttl))

    def close(self) -> None:
        """Close the wrapped store's SDK clients (and stop the private loop thread).

        The store may be used again afterwards: the next call opens them again.
        """
        self._runner.close()

    def __enter__(self) -> Self:
        """Open the store (so a bad setting fails here, mapped like any operation)."""
        self._run(self.store.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncSessionStore({self.store!r})"


def open_store_sync(url: str | None = None, **options: Any) -> SyncSessionStore:
    """Build the store a URL names (as :func:`open_store`) behind the synchronous API.

    Raises:
        StoreConfigError: as :func:`open_store`.
    """
    return SyncSessionStore(open_store(url, **options))

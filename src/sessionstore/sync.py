"""SyncSessionStore: the store's API for synchronous code (Lambda, Flask, Django, scripts).

The store's logic is written once, as coroutines; a :class:`SyncSessionStore` runs them
in one of two ways (docs/DESIGN.md, "Event loops, the sync API and deadlines"):

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

import asyncio
import atexit
import contextlib
import contextvars
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from sessionstore.errors import StoreUnavailableError
from sessionstore.forks import at_fork_in_child, renew_in_child
from sessionstore.provider import SYNC_CALL
from sessionstore.types import SessionInfo, SessionSnapshot, Versioned
from sessionstore.url import open_store

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = ["SyncSessionStore", "open_store_sync"]

T = TypeVar("T")
_log = logging.getLogger("sessionstore")

#: How long interpreter exit waits for an unclosed store to close its client.
_EXIT_CLOSE_TIMEOUT = 10.0


class _OwnLoop:
    """A thread's private event loop, closed when the thread ends (or at exit)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        self.loop.close()


class _ThreadLoops(threading.local):
    own: _OwnLoop | None = None


_thread_loops = _ThreadLoops()


@atexit.register
def _close_main_loop() -> None:
    # Thread-local data of the main thread outlives atexit: close its loop here, after
    # ending the async generators it runs (a sync iterator kept until exit), so that
    # none is left to finalize on a closed loop.
    own, _thread_loops.own = _thread_loops.own, None
    if own is not None:
        with contextlib.suppress(Exception):
            own.loop.run_until_complete(own.loop.shutdown_asyncgens())
        own.loop.close()


def _run_here(coro: Coroutine[Any, Any, T]) -> T:
    """Run a store call on this thread's private loop, marked as a sync-API call."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code: this thread's loop is busy; block it, as boto3 would
        context = contextvars.copy_context()
        with ThreadPoolExecutor(1, thread_name_prefix="sessionstore-sync") as pool:
            done: Future[T] = pool.submit(context.run, _run_here, coro)  # type: ignore[arg-type]
            return done.result()
    own = _thread_loops.own
    if own is None:
        own = _thread_loops.own = _OwnLoop()
    loop = own.loop
    token = SYNC_CALL.set(True)
    try:
        task = loop.create_task(coro)  # it copies the context, and so the mark
    finally:
        SYNC_CALL.reset(token)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        # Interrupted (KeyboardInterrupt from a signal handler): the call must end
        # here, not resume inside the thread's next call and write after all.
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        elif not task.cancelled():
            # The interrupt was raised inside the task, which holds it too: it is
            # this exception, already on its way to the caller. Marked as retrieved,
            # so that asyncio does not report it again when the task is collected.
            task.exception()
        raise


class _LoopThread:
    """One event loop running ``store``'s calls in a daemon thread until :meth:`stop`."""

    def __init__(self, store: ObjectSessionStore) -> None:
        self.store = store
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sessionstore-sync", daemon=True)
        try:
            self.thread.start()
        except RuntimeError as exc:  # no thread left (a process or memory limit)
            raise StoreUnavailableError(
                f"{store!r}: cannot start the sync API's event loop thread ({exc})"
            ) from exc
        self._ready.wait()
        if self._loop is None:  # the loop never started (no file descriptor left, ...)
            failure = self._failure
            raise StoreUnavailableError(
                f"{store!r}: cannot start the sync API's event loop"
                f" ({type(failure).__name__}: {failure})"
            ) from failure
        with _live_lock:
            _live.add(self)

    def _run(self) -> None:
        serve = self._serve()
        try:
            asyncio.run(serve)
        except BaseException as exc:  # handed to the thread that waits in __init__
            serve.close()  # never awaited if the loop could not be made
            self._failure = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._ready.set()
        await self._stopped
        # Close the store's client on the loop it lives on; asyncio.run then ends the
        # loop's async generators and executor threads. Nothing is printed from here,
        # which may run at interpreter exit.
        try:
            await self.store.aclose()
        except Exception as exc:
            _log.debug("sessionstore: closing %r: %r", self.store, exc)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self, timeout: float | None = None, *, wait: bool = True) -> None:
        """Close the store on the loop, end the loop and its thread.

        With ``wait=False`` (a finalizer, which may run on that very thread) the
        thread is told to end and not waited for.
        """
        with _live_lock:
            _live.discard(self)
        loop, stopped = self._loop, self._stopped
        assert loop is not None and stopped is not None

        def stop_now() -> None:
            if not stopped.done():
                stopped.set_result(None)

        try:
            loop.call_soon_threadsafe(stop_now)
        except RuntimeError:  # the loop has already ended
            return
        if wait:
            self.thread.join(timeout)


#: Loop threads still running, stopped at interpreter exit (like an unclosed boto3
#: client, a SyncSessionStore that is never closed keeps its thread until then).
_live: set[_LoopThread] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_at_exit() -> None:
    with _live_lock:
        running = list(_live)
    for runner in running:
        runner.stop(timeout=_EXIT_CLOSE_TIMEOUT)


@at_fork_in_child
def _after_fork_in_child() -> None:
    # Only the forking thread lives on in the child: other threads' loops and the loop
    # threads are gone (each SyncSessionStore forgets its own in _forked).
    global _live_lock
    _thread_loops.own = None
    _live_lock = threading.Lock()
    _live.clear()


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
        self._lock = threading.Lock()
        self._runner: _LoopThread | None = None
        #: Whether calls run on the caller's thread with the sync SDK (see the module).
        self.on_callers_thread = store._serves_sync()
        #: Stops the loop thread when this instance is garbage-collected unclosed.
        self._finalizer: weakref.finalize[..., Any] | None = None
        renew_in_child(self)

    def _forked(self) -> None:
        """In a forked child: forget the parent's loop thread (the store renews itself)."""
        self._lock = threading.Lock()
        self._runner = None  # its thread did not survive the fork
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    # ------------------------------------------------------------------ running

    def _loop_thread(self) -> _LoopThread:
        runner = self._runner
        if runner is not None:
            return runner
        with self._lock:
            if self._runner is None:
                runner = self._runner = _LoopThread(self.store)
                # Dropped without close(): the thread, its loop (and the loop's file
                # descriptors) end with this instance. The runner never refers back to
                # it, so nothing keeps an unreferenced SyncSessionStore alive.
                self._finalizer = weakref.finalize(self, runner.stop, wait=False)
                self._finalizer.atexit = False  # exit stops every runner (_stop_at_exit)
            return self._runner

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` as a sync-API call and wait for its result or error."""
        if self.on_callers_thread:
            return _run_here(coro)
        try:
            runner = self._loop_thread()
        except BaseException:
            coro.close()  # never started: nothing to report at exit
            raise
        if threading.current_thread() is runner.thread:
            coro.close()
            raise RuntimeError(
                "a SyncSessionStore was called from its own event loop thread; use the"
                " async store (SyncSessionStore.store) there"
            )
        # The caller's context (and so its sessionstore.deadline) travels with the call:
        # run_coroutine_threadsafe schedules it with the calling thread's context.
        future = runner.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: stop the call too
            raise

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
        if self.on_callers_thread:
            self._run(self.store.aclose())
            return
        with self._lock:
            runner, self._runner = self._runner, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if runner is not None:
            runner.stop()

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

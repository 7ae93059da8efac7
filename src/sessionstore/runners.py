"""How a :class:`~sessionstore.sync.SyncSessionStore` runs the store's coroutines.

The store's logic is written once, as coroutines; a sync wrapper chooses one of two
runners when it wraps the store, and every call goes through it (docs/DESIGN.md,
"Event loops, the sync API and deadlines"):

- :class:`OnCallersThread` (every built-in cloud store and the file store): each call
  runs on a private event loop of the calling thread, marked as a sync-API call
  (:func:`sessionstore.provider.sync_call`), so that the store makes its requests with
  the provider's *synchronous* SDK client, inline. Each thread's loop is made on first
  use and closed when the thread ends (the main thread's, at exit).
- :class:`OnLoopThread` (the memory store, a custom provider without ``_open_sync``, a
  store with an injected async client or session): one private event loop in a daemon
  thread, started on first use; every call is submitted to it and waited for. A loop
  thread never closed is stopped at interpreter exit.

Fork handling of the sync layer lives here too: the module state a forked child must
drop (the forking thread's loop, the live loop threads) is reset by the
:func:`~sessionstore.forks.at_fork_in_child` hooks beside it, and each runner's
:meth:`Runner.forked` forgets what the wrapper had started (the wrapper's one
:func:`~sessionstore.forks.renew_in_child` registration calls it).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sessionstore.errors import StoreUnavailableError
from sessionstore.forks import at_fork_in_child
from sessionstore.provider import SYNC_CALL

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = ["OnCallersThread", "OnLoopThread", "Runner"]

T = TypeVar("T")
_log = logging.getLogger("sessionstore")

#: How long interpreter exit waits for an unclosed store to close its client.
_EXIT_CLOSE_TIMEOUT = 10.0


class Runner(ABC):
    """Runs a wrapped store's coroutines for synchronous callers (one of two ways)."""

    #: Whether calls run on the caller's thread with the sync SDK (see the module).
    on_callers_thread: ClassVar[bool]

    def __init__(self, store: ObjectSessionStore) -> None:
        self.store = store

    @abstractmethod
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` as a sync-API call and wait for its result or error.

        Raises:
            Whatever ``coro`` raises; RuntimeError if called from the runner's own
            loop thread; StoreUnavailableError if that thread cannot start.
        """

    @abstractmethod
    def close(self) -> None:
        """Close the store's SDK clients and end what this runner started.

        The runner may be used again afterwards: the next call opens them again.
        """

    @abstractmethod
    def forked(self) -> None:
        """In a forked child: forget what the parent's threads ran for this runner."""


# ---------------------------------------------------------------- caller's thread


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


@at_fork_in_child
def _forget_thread_loops() -> None:
    # Only the forking thread lives on in the child: the other threads' loops are gone
    # with them, and this one's is the parent's; the child makes its own on first use.
    _thread_loops.own = None


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


class OnCallersThread(Runner):
    """Runs each call on the calling thread's private loop, with the store's sync client.

    Starts no thread: a call from async code (a loop already runs in the thread) runs
    in a one-off worker thread and blocks the caller's loop, as a boto3 call would.
    """

    on_callers_thread = True

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this thread's loop as a sync-API call (see :class:`Runner`)."""
        return _run_here(coro)

    def close(self) -> None:
        """Close the store's clients, its sync client included (see :class:`Runner`)."""
        self.run(self.store.aclose())

    def forked(self) -> None:
        """Nothing of its own to forget: the thread loops reset with the module."""


# ---------------------------------------------------------------- loop thread


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
def _forget_loop_threads() -> None:
    # The loop threads did not survive the fork, and another thread may have held the
    # lock (each OnLoopThread forgets its own in forked()).
    global _live_lock
    _live_lock = threading.Lock()
    _live.clear()


class OnLoopThread(Runner):
    """Runs each call on one private loop thread, started on first use.

    Calling it from that very thread raises RuntimeError instead of deadlocking.
    """

    on_callers_thread = False

    def __init__(self, store: ObjectSessionStore) -> None:
        super().__init__(store)
        self._lock = threading.Lock()
        #: The running loop thread, if started (and not closed since).
        self.loop_thread: _LoopThread | None = None
        #: Stops the loop thread when this runner (so its wrapper) is collected unclosed.
        self._finalizer: weakref.finalize[..., Any] | None = None

    def _started(self) -> _LoopThread:
        """The loop thread, started now if it is not running."""
        loop_thread = self.loop_thread
        if loop_thread is not None:
            return loop_thread
        with self._lock:
            if self.loop_thread is None:
                loop_thread = self.loop_thread = _LoopThread(self.store)
                # Dropped without close(): the thread, its loop (and the loop's file
                # descriptors) end with this runner, which only its wrapper holds. The
                # thread never refers back to either, so nothing keeps them alive.
                self._finalizer = weakref.finalize(self, loop_thread.stop, wait=False)
                self._finalizer.atexit = False  # exit stops every one (_stop_at_exit)
            return self.loop_thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop thread and wait for it (see :class:`Runner`)."""
        try:
            loop_thread = self._started()
        except BaseException:
            coro.close()  # never started: nothing to report at exit
            raise
        if threading.current_thread() is loop_thread.thread:
            coro.close()
            raise RuntimeError(
                "a SyncSessionStore was called from its own event loop thread; use the"
                " async store (SyncSessionStore.store) there"
            )
        # The caller's context (and so its sessionstore.deadline) travels with the call:
        # run_coroutine_threadsafe schedules it with the calling thread's context.
        future = loop_thread.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: stop the call too
            raise

    def close(self) -> None:
        """Close the store on its loop and end the loop thread (see :class:`Runner`)."""
        with self._lock:
            loop_thread, self.loop_thread = self.loop_thread, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if loop_thread is not None:
            loop_thread.stop()

    def forked(self) -> None:
        """Forget the parent's loop thread, which did not survive the fork."""
        self._lock = threading.Lock()
        self.loop_thread = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

"""The client lifecycle layer: which client a call uses, and when clients open and close.

One async client per event loop (or one for all, see ``Capabilities``) through
:class:`sessionstore.loops.LoopAffinity`; the synchronous client of the sync API, shared
by every thread; blocking calls on worker threads (or inline, or on a deadline's daemon
thread); and what a forked child drops (docs/DESIGN.md, "Event loops, the sync API and
deadlines").
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sessionstore.calls import CallLayer
from sessionstore.deadline import remaining
from sessionstore.forks import renew_in_child
from sessionstore.loops import LoopAffinity
from sessionstore.provider import sync_call

__all__ = ["ClientLifecycle"]

_log = logging.getLogger("sessionstore")
T = TypeVar("T")


class ClientLifecycle(CallLayer):
    """Opens, shares and closes the store's SDK clients, async and sync."""

    def _start_lifecycle(self) -> None:
        """Set up the client state (at construction); a forked child renews it."""
        self._affinity = self._new_affinity()
        self._sync_lock = threading.Lock()  # guards opening and closing the sync state
        self._sync_open = False
        renew_in_child(self)

    def _new_affinity(self) -> LoopAffinity:
        return LoopAffinity(
            lambda: repr(self),
            lambda stack: self._translated(self._open(stack)),
            bound=self.capabilities.client_follows_loop,
        )

    async def _blocking(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking call: inline for a sync-API call, else in a worker thread.

        A sync-API call inside a :func:`sessionstore.deadline` block runs on a daemon
        thread of its own, so that the deadline can cut it off and a cut-off request
        (still blocked in a socket read) never delays the process's exit. The caller's
        context (its deadline, :func:`~sessionstore.provider.sync_call`) goes along.
        """
        if sync_call():
            if remaining() is None:
                return fn(*args, **kwargs)
            return await _on_daemon_thread(functools.partial(fn, *args, **kwargs))
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._worker_pool(), call)

    async def _ensure_open(self) -> None:
        if sync_call():
            if not self._sync_open:
                await self._ensure_open_sync()
        elif not self._affinity.is_open_here():
            await self._affinity.ensure_open()

    async def _ensure_open_sync(self) -> None:
        def open_once() -> None:
            # The lock is held where the open runs: a caller its deadline cut off
            # leaves the open to finish there (and serve the next call), and a caller
            # waiting for it waits in its own thread, within its own deadline.
            with self._sync_lock:  # other threads' sync calls wait for the one client
                if not self._sync_open:
                    self._open_sync()
                    self._sync_open = True

        await self._translated(self._blocking(open_once))

    def _end_sync(self) -> None:
        """Close the sync state, if open (blocking)."""
        with self._sync_lock:
            if self._sync_open:
                self._sync_open = False
                self._close_sync()

    def _forked(self) -> None:
        """In a forked child (:mod:`sessionstore.forks`): drop what the parent opened.

        The async clients (one per event loop) are forgotten, unclosed: their
        connections are the parent's too (a request on one, or a TLS close, would mix
        up the two processes' streams). The sync client is closed, which closes only
        the child's copies of its sockets. The next call opens everything afresh.
        """
        self._affinity.forget_all()
        self._affinity = self._new_affinity()
        self._sync_lock = threading.Lock()
        if self._sync_open:
            self._sync_open = False
            try:
                self._close_sync()
            except Exception as exc:  # pragma: no cover - depends on the SDK
                _log.debug("sessionstore: dropping %r's sync client after fork: %r", self, exc)

    async def aclose(self) -> None:
        """Close the SDK clients the store built, every event loop's (an injected client
        stays open); the next call opens new ones."""
        await self._affinity.aclose()
        self._end_sync()


def _on_daemon_thread(call: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``call`` (with the caller's context) on a new daemon thread; await its result.

    Interpreter exit joins no daemon thread, unlike executor workers: a request the
    caller gave up on (its deadline passed) may stay blocked there without keeping the
    process alive. Its late result or error is dropped.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():  # the caller gave up (cancelled)
            return
        if error is None:
            done.set_result(result)  # type: ignore[arg-type]
        else:
            done.set_exception(error)

    def run() -> None:
        try:
            result, error = context.run(call), None
        except BaseException as exc:  # handed to the caller, whatever it is
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the caller's loop has closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="sessionstore-deadline", daemon=True).start()
    return done

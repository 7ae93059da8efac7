"""A store's SDK client follows its caller's event loop.

aiohttp-based SDK clients (aiobotocore, azure-core) belong to the event loop they were
built on. A serverless handler runs each invocation in a new loop (``asyncio.run``),
while the store is built once, at import, outside any loop. :class:`LoopAffinity`
keeps the client on the loop that uses it:

- the first call in a loop opens the client there and registers an async generator
  with that loop; when the loop shuts down (``asyncio.run``, ``asyncio.Runner``,
  pytest-asyncio, ``uvloop.run`` all close async generators before closing the loop)
  the generator's ``finally`` closes the client, on its own loop, with nothing left
  open;
- a call from the next loop finds no client and opens a fresh one there;
- a call from a loop while another loop using the store runs in another thread is
  refused: one store, one loop at a time (:class:`SyncSessionStore` is the way to share
  one store between threads);
- a client that belongs to no loop (the GCS store's thread pool; the file and memory
  stores have none) is kept across loops (``bound=False``), refusals aside;
- ``aclose()`` works from any loop: on the client's loop, from another loop while the
  client's loop runs (the close is sent there), or after it stopped.

A loop closed without closing its async generators (``loop.close()`` by hand) cannot
run the close any more; the next loop then lets go of the old client (closing what
can be closed from outside) and builds a new one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable

from sessionstore.errors import StoreInUseError

__all__ = ["LoopAffinity"]

_log = logging.getLogger("sessionstore")


class LoopAffinity:
    """Opens and closes one store's client on the loop that uses it (see the module)."""

    def __init__(
        self,
        name: Callable[[], str],
        open_client: Callable[[], Awaitable[None]],
        close_client: Callable[[], Awaitable[None]],
        *,
        bound: bool = True,
    ) -> None:
        self._name = name
        self._bound = bound  # False: the client works from any loop (threads, no aiohttp)
        self._open_client = open_client
        self._close_client = close_client
        self._lock = threading.Lock()  # guards the fields below across threads
        self.loop: asyncio.AbstractEventLoop | None = None  # where the open client lives
        self.opened = False
        self._open_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None

    def is_open_here(self) -> bool:
        """Whether the client is open on the running loop (the fast path of every call)."""
        return self.opened and self.loop is asyncio.get_running_loop()

    def _loop_lock(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        with self._lock:
            if self._lock_loop is not loop or self._open_lock is None:
                self._open_lock, self._lock_loop = asyncio.Lock(), loop
            return self._open_lock

    def _refuse_if_busy(self, loop: asyncio.AbstractEventLoop) -> None:
        owner = self.loop
        if self.opened and owner is not None and owner is not loop and owner.is_running():
            raise StoreInUseError(
                f"{self._name()} is in use by an event loop running in another thread;"
                " a store serves one event loop at a time. Share one store between threads"
                " with sessionstore.SyncSessionStore (or open_store_sync()), or give each"
                " thread's loop a store of its own"
            )

    async def ensure_open(self) -> None:
        """Open the client on the running loop, letting go of one left on another loop.

        Raises:
            StoreInUseError: the store is in use by a loop running in another thread.
            Whatever opening the client raises.
        """
        loop = asyncio.get_running_loop()
        if self.opened and self.loop is loop:
            return
        async with self._loop_lock(loop):
            with self._lock:
                self._refuse_if_busy(loop)
                stale = self.opened and self.loop is not loop
                if stale and not self._bound:
                    self.loop = loop  # the same client serves the new loop
                    return
            if stale:
                await self._let_go()
            if not self.opened:
                await self._open_client()
                with self._lock:
                    self.opened, self.loop = True, loop
                if self._bound:
                    await self._watch(loop)

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Register the close-at-loop-shutdown generator with ``loop``."""
        guard = self._closes_at_shutdown(loop)
        await guard.__anext__()  # the loop's first-iteration hook registers it
        self._guard = guard

    async def _closes_at_shutdown(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None]:
        try:
            yield
        finally:
            # The loop is shutting down its async generators: close the client while
            # the loop can still run the close. Errors are logged, never raised there.
            if self.opened and self.loop is loop and asyncio.get_running_loop() is loop:
                self._guard = None
                try:
                    await self._close_here()
                except Exception as exc:  # pragma: no cover - depends on the SDK
                    _log.debug("sessionstore: closing %s at loop shutdown: %r", self._name(), exc)

    async def _close_here(self) -> None:
        with self._lock:
            self.opened, self.loop = False, None
        await self._close_client()

    def _end_guard(self) -> None:
        """Finish the shutdown generator without running the loop it belongs to."""
        guard, self._guard = self._guard, None
        if guard is not None:
            closing = guard.aclose()
            try:
                closing.send(None)  # its finally awaits nothing once the client is gone
            except StopIteration:
                pass
            else:  # pragma: no cover - the finally always returns at once here
                closing.close()

    async def _let_go(self) -> None:
        """Drop a client left open on a loop that no longer runs (stopped or closed)."""
        with self._lock:
            self.opened, self.loop = False, None
        self._end_guard()
        try:
            # From outside its loop only part of the client can be closed; the rest
            # (sockets of a closed loop) goes with the objects.
            await self._close_client()
        except Exception as exc:
            _log.debug("sessionstore: letting go of %s's client: %r", self._name(), exc)

    async def aclose(self) -> None:
        """Close the client, from whichever loop it is called on."""
        loop = asyncio.get_running_loop()
        async with self._loop_lock(loop):
            with self._lock:
                owner, opened = self.loop, self.opened
            if not opened:
                return
            if owner is loop or not self._bound:
                with self._lock:
                    self.opened, self.loop = False, None
                self._end_guard()
                await self._close_client()
            elif owner is not None and owner.is_running():
                # Its loop runs in another thread: close the client there.
                try:
                    done = asyncio.run_coroutine_threadsafe(self._close_on_owner(owner), owner)
                except RuntimeError:  # that loop closed meanwhile
                    await self._let_go()
                else:
                    await asyncio.wrap_future(done)
            else:
                await self._let_go()

    async def _close_on_owner(self, owner: asyncio.AbstractEventLoop) -> None:
        if self.opened and self.loop is owner:
            with self._lock:
                self.opened, self.loop = False, None
            self._end_guard()
            await self._close_client()

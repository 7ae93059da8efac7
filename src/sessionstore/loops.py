"""A store's SDK client per event loop: any number of loops may use one store at once.

aiohttp-based SDK clients (aiobotocore, azure-core) belong to the event loop they were
built on. A serverless handler runs each invocation in a new loop (``asyncio.run``),
a web server may run one loop per worker thread, and a sync-API call without a sync
client runs on a private loop thread, while the store is built once, at import,
outside any loop. :class:`LoopAffinity` gives each live loop a client of its own:

- the first call in a loop opens a client there (other loops' calls go on meanwhile;
  two tasks of one loop wait for the one open) and registers an async generator with
  that loop; when the loop shuts down (``asyncio.run``, ``asyncio.Runner``,
  pytest-asyncio, ``uvloop.run`` all close async generators before closing the loop)
  the generator's ``finally`` closes that loop's client, on its own loop;
- a client that belongs to no loop (the GCS store's thread pool; the file and memory
  stores have none) is opened once and shared by every loop (``bound=False``); two
  loops that open it at the same moment keep one and close the other;
- ``aclose()`` closes every loop's client, from any loop: on the calling loop, through
  its own loop if that one runs in another thread, or from outside if it stopped;
- a store garbage-collected without ``aclose()`` closes the clients of loops still
  running on those loops (a :func:`weakref.finalize` that holds the clients, never
  the store), so aiohttp has no unclosed session to report;
- a loop closed without closing its async generators (``loop.close()`` by hand) cannot
  run the close any more: the next new loop lets go of its client, closing what can be
  closed from outside.

Every client's closing is pushed onto an :class:`~contextlib.AsyncExitStack` by the
opener (``open_client(stack)``), so closing needs nothing of the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

__all__ = ["LoopAffinity"]

_log = logging.getLogger("sessionstore")

#: Opens a client on the running loop, pushing its closing onto the stack.
Opener = Callable[[contextlib.AsyncExitStack], Awaitable[Any]]


class _Opened:
    """One open client and the stack that closes it."""

    __slots__ = ("client", "stack")

    def __init__(self, client: Any, stack: contextlib.AsyncExitStack) -> None:
        self.client = client
        self.stack = stack

    async def close(self, name: str) -> None:
        """Close the client; errors are logged, never raised (nothing can be done)."""
        try:
            await self.stack.aclose()
        except Exception as exc:
            _log.debug("sessionstore: closing %s's client: %r", name, exc)


class _Slot:
    """What one event loop uses: its client (or the shared one) and its open lock."""

    __slots__ = ("guard", "lock", "loop", "opened")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = asyncio.Lock()  # one open per loop at a time
        self.opened: _Opened | None = None
        self.guard: AsyncGenerator[None, None] | None = None


class _Slots:
    """The loops' slots, shared by the affinity, its guards and its finalizer."""

    name: str  # the store's repr (for log lines), set by ensure_open before any open

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards the fields below across threads
        self.by_loop: dict[asyncio.AbstractEventLoop, _Slot] = {}
        self.forgotten = False

    def take(self, slot: _Slot) -> _Opened | None:
        """Detach ``slot`` and return its client, if it still has one to close."""
        with self.lock:
            if self.by_loop.get(slot.loop) is slot:
                del self.by_loop[slot.loop]
            opened, slot.opened = slot.opened, None
        if self.forgotten:
            return None
        return opened


class LoopAffinity:
    """Opens and closes one store's clients on the loops that use it (see the module)."""

    def __init__(self, name: Callable[[], str], open_client: Opener, *, bound: bool = True) -> None:
        self._name = name
        self._bound = bound  # False: one client serves every loop (threads, no aiohttp)
        self._open_client = open_client
        self._slots = _Slots()
        self._shared: _Opened | None = None  # the client of an unbound store
        if bound:
            # Holds the slots, not the store: the store can still be collected.
            self._finalizer = weakref.finalize(self, _close_abandoned, self._slots)
            self._finalizer.atexit = False  # at exit no loop runs to close on

    def is_open_here(self) -> bool:
        """Whether the running loop has its client (the fast path of every call)."""
        slot = self._slots.by_loop.get(asyncio.get_running_loop())
        return slot is not None and slot.opened is not None

    def client(self) -> Any:
        """The client of the running loop; outside a loop, the one opened last (or None)."""
        try:
            slot = self._slots.by_loop.get(asyncio.get_running_loop())
        except RuntimeError:  # no running loop
            with self._slots.lock:
                opened = [s for s in self._slots.by_loop.values() if s.opened is not None]
            slot = opened[-1] if opened else None
        here = slot.opened if slot is not None else None
        return here.client if here is not None else None

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        """The loops that have a client open now."""
        with self._slots.lock:
            return [s.loop for s in self._slots.by_loop.values() if s.opened is not None]

    async def ensure_open(self) -> None:
        """Open the running loop's client, if it has none yet.

        Raises:
            Whatever opening the client raises.
        """
        loop = asyncio.get_running_loop()
        self._slots.name = self._name()
        while True:
            slot, gone = self._slot(loop)
            for old in gone:  # clients of loops closed without closing them
                await self._let_go(old)
            async with slot.lock:
                if slot.opened is not None:
                    return
                opened = await self._open_shared() if not self._bound else await self._open()
                with self._slots.lock:
                    current = self._slots.by_loop.get(loop) is slot
                    if current:
                        slot.opened = opened
                if current:
                    if self._bound:
                        slot.guard = await _watch(self._slots, slot)
                    return
            # aclose() ran meanwhile and took the slot: this client is nobody's.
            if self._bound:
                await opened.close(self._slots.name)

    def _slot(self, loop: asyncio.AbstractEventLoop) -> tuple[_Slot, list[_Slot]]:
        """The running loop's slot (made if new), and the slots of closed loops."""
        with self._slots.lock:
            slot = self._slots.by_loop.get(loop)
            if slot is not None:
                return slot, []
            slot = self._slots.by_loop[loop] = _Slot(loop)
            gone = [s for s in self._slots.by_loop.values() if s.loop.is_closed()]
        return slot, gone

    async def _open(self) -> _Opened:
        stack = contextlib.AsyncExitStack()
        try:
            client = await self._open_client(stack)
        except BaseException:
            await stack.aclose()
            raise
        return _Opened(client, stack)

    async def _open_shared(self) -> _Opened:
        """The one client of an unbound store, opened by the first loop that asks."""
        shared = self._shared
        if shared is not None:
            return shared
        opened = await self._open()
        with self._slots.lock:
            winner = self._shared
            if winner is None:
                self._shared = winner = opened
        if winner is not opened:  # another loop opened it meanwhile: keep one
            await opened.close(self._slots.name)
        return winner

    async def _let_go(self, slot: _Slot) -> None:
        """Close a client from outside its loop (stopped or closed), as far as possible."""
        opened = self._slots.take(slot)
        _end_guard(slot)
        if opened is not None and self._bound:
            await opened.close(self._slots.name)

    def forget_all(self) -> None:
        """Never close these clients (a forked child: they are the parent's).

        Takes no lock: in a forked child, another thread of the parent may have held it.
        """
        self._slots.forgotten = True
        if self._bound:
            self._finalizer.detach()

    async def aclose(self) -> None:
        """Close every loop's client, from whichever loop it is called on."""
        here = asyncio.get_running_loop()
        with self._slots.lock:
            slots = list(self._slots.by_loop.values())
            shared, self._shared = self._shared, None
        for slot in slots:
            if not self._bound:
                self._slots.take(slot)
            elif slot.loop is here:
                opened = self._slots.take(slot)
                _end_guard(slot)
                if opened is not None:
                    await opened.close(self._slots.name)
            elif slot.loop.is_running():
                await self._close_on(slot)
            else:
                await self._let_go(slot)
        if shared is not None:
            await shared.close(self._slots.name)

    async def _close_on(self, slot: _Slot) -> None:
        """Close ``slot``'s client on its own loop, which runs in another thread."""

        async def there() -> None:
            opened = self._slots.take(slot)
            _end_guard(slot)
            if opened is not None:
                await opened.close(self._slots.name)

        try:
            done = asyncio.run_coroutine_threadsafe(there(), slot.loop)
        except RuntimeError:  # that loop closed meanwhile
            await self._let_go(slot)
        else:
            await asyncio.wrap_future(done)


async def _watch(slots: _Slots, slot: _Slot) -> AsyncGenerator[None, None]:
    """Register a generator with the running loop that closes ``slot`` at its shutdown."""
    guard = _closes_at_shutdown(slots, slot)
    await guard.__anext__()  # the loop's first-iteration hook registers it
    return guard


async def _closes_at_shutdown(slots: _Slots, slot: _Slot) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        # The loop is shutting down its async generators (or the generator was ended
        # by _end_guard after its client was taken): close what is left, on this loop.
        _orphans.discard(slot)
        if slot.opened is not None:
            slot.guard = None
            opened = slots.take(slot)
            if opened is not None:
                await opened.close(slots.name)


def _end_guard(slot: _Slot) -> None:
    """Finish the shutdown generator without running its loop (its client was taken)."""
    guard, slot.guard = slot.guard, None
    if guard is None:
        return
    closing = guard.aclose()
    try:
        closing.send(None)  # its finally awaits nothing once the client is taken
    except StopIteration:
        pass
    except RuntimeError:  # pragma: no cover - the loop is finishing it right now
        closing.close()
    else:  # pragma: no cover - the finally always returns at once here
        closing.close()


#: Slots of collected stores whose close is pending: their guards must stay alive
#: (a loop holds its async generators weakly) to close them at the loop's shutdown if
#: the close the finalizer scheduled never ran (cancelled as the loop ends).
_orphans: set[_Slot] = set()
_closing: set[asyncio.Future[Any]] = set()  # the scheduled closes, kept alive


# pragma: no mutate start
# Run by the garbage collector (a weakref.finalize), at any allocation: mutmut's
# trampoline there sets a context variable inside another one's set, which crashes
# the interpreter (mutmut-survivors.md, "Not run by mutmut").
def _close_abandoned(slots: _Slots) -> None:
    """A store was collected unclosed: close each running loop's client on that loop."""
    with slots.lock:
        abandoned = [s for s in slots.by_loop.values() if s.opened is not None]
    if slots.forgotten:
        return
    for slot in abandoned:
        if slot.loop.is_closed() or not slot.loop.is_running():
            continue  # a stopped loop's client goes with the objects
        _orphans.add(slot)

        def close(slot: _Slot = slot) -> None:
            task = asyncio.ensure_future(_close_orphan(slots, slot))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

        try:
            slot.loop.call_soon_threadsafe(close)
        except RuntimeError:  # closed meanwhile
            _orphans.discard(slot)


# pragma: no mutate end
async def _close_orphan(slots: _Slots, slot: _Slot) -> None:
    opened = slots.take(slot)
    _end_guard(slot)
    _orphans.discard(slot)
    if opened is not None:
        await opened.close(slots.name)

"""LoopAffinity on its own: one client per live event loop, closed with its loop.

The clients here are plain objects with a recorded close: what is under test is which
loop opens, uses and closes which client (the stores' own tests run it on the SDKs).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessionstore import loops as loops_module
from sessionstore.loops import LoopAffinity


class Client(int):
    """A client that reports being collected unclosed, as aiohttp's sessions do."""

    leaked: list[int] = []  # noqa: RUF012 - the record every test checks
    closed = False

    def __del__(self) -> None:
        if not self.closed:
            Client.leaked.append(int(self))


class Clients:
    """An opener that records each client it opens and where each one is closed."""

    def __init__(self, *, close_fails: bool = False) -> None:
        self.opened: list[int] = []  # numbers only: a client lives where the store keeps it
        self.closed: dict[int, asyncio.AbstractEventLoop | None] = {}
        self.fail_next = False
        self.close_fails = close_fails  # each close then raises, after closing
        self.gate: asyncio.Event | None = None

    async def open(self, stack: contextlib.AsyncExitStack) -> Client:
        if self.gate is not None:
            await self.gate.wait()
        client = Client(len(self.opened))
        self.opened.append(int(client))
        stack.push_async_callback(self._close, client)
        if self.fail_next:
            self.fail_next = False
            raise OSError("no credentials")
        await asyncio.sleep(0)  # let concurrent first calls of one loop meet here
        return client

    async def _close(self, client: Client) -> None:
        await asyncio.sleep(0)  # an SDK's close awaits its connections: it must be awaited
        client.closed = True
        self.closed[int(client)] = asyncio.get_running_loop()
        if self.close_fails:
            raise OSError("connection reset")


@pytest.fixture(autouse=True)
def nothing_leaked() -> Iterator[None]:
    """Every test ends with no client collected unclosed."""
    Client.leaked.clear()
    yield
    gc.collect()
    assert Client.leaked == []


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The sessionstore logger's records, down to DEBUG (where a failed close is told)."""
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    return caplog


def failed_closes(log: pytest.LogCaptureFixture) -> list[str]:
    """The log lines of closes that failed: each names the store (and nothing is raised)."""
    return [m for m in log.messages if m.startswith("sessionstore: closing")]


FAILED_CLOSE = "sessionstore: closing TestStore's client: OSError('connection reset')"


def affinity(clients: Clients, *, bound: bool = True) -> LoopAffinity:
    return LoopAffinity(lambda: "TestStore", clients.open, bound=bound)


async def use(loops: LoopAffinity) -> Any:
    await loops.ensure_open()
    assert loops.is_open_here()
    return loops.client()


def test_each_loop_gets_its_own_client_closed_at_its_shutdown() -> None:
    clients = Clients()
    loops = affinity(clients)
    assert loops.client() is None
    firsts = [asyncio.run(use(loops)) for _ in range(3)]
    assert firsts == [0, 1, 2] and list(clients.closed) == [0, 1, 2]
    assert loops.loops() == []


def test_tasks_of_one_loop_share_one_open() -> None:
    clients = Clients()
    loops = affinity(clients)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(use(loops) for _ in range(5))))

    assert asyncio.run(main()) == [0] * 5
    assert clients.opened == [0]


def test_loops_at_once_in_threads_each_have_a_client() -> None:
    clients = Clients()
    loops = affinity(clients)
    barrier = threading.Barrier(3)
    seen: dict[int, Any] = {}

    async def work(i: int) -> None:
        await asyncio.to_thread(barrier.wait, 30)
        seen[i] = await use(loops)
        await asyncio.to_thread(barrier.wait, 30)  # every loop holds its client here
        assert loops.client() == seen[i]

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(asyncio.run, work(i)) for i in range(3)]:
            future.result(30)
    assert sorted(seen.values()) == [0, 1, 2] and sorted(clients.closed) == [0, 1, 2]


def test_aclose_closes_every_loops_client_on_its_own_loop(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    clients = Clients(close_fails=True)
    loops = affinity(clients)
    holding, release = threading.Event(), threading.Event()
    held_loop: list[asyncio.AbstractEventLoop] = []

    async def hold() -> Any:
        held_loop.append(asyncio.get_running_loop())
        first = await use(loops)
        holding.set()
        await asyncio.to_thread(release.wait, 30)
        return first, await use(loops)  # reopens after the close

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(asyncio.run, hold())
        assert holding.wait(30)

        async def close_all() -> asyncio.AbstractEventLoop:
            await use(loops)  # this loop's client too
            await loops.aclose()
            return asyncio.get_running_loop()

        mine = asyncio.run(close_all())
        assert clients.closed == {0: held_loop[0], 1: mine}
        assert loops.loops() == []
        release.set()
        assert held.result(30) == (0, 2)
    assert clients.closed[2] is held_loop[0]  # at that loop's shutdown
    assert failed_closes(debug_log) == [FAILED_CLOSE] * 3


def test_a_loop_closed_by_hand_is_let_go_by_the_next_loop(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    clients = Clients(close_fails=True)
    loops = affinity(clients)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(use(loops)) == 0
    finally:
        loop.close()  # without closing its async generators
    assert clients.closed == {}
    assert asyncio.run(use(loops)) == 1
    assert list(clients.closed) == [0, 1]  # 0 from outside its loop, 1 at shutdown
    assert failed_closes(debug_log) == [FAILED_CLOSE] * 2


def test_aclose_of_a_stopped_loops_client_closes_it_from_outside() -> None:
    clients = Clients()
    loops = affinity(clients)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(use(loops))
        asyncio.run(loops.aclose())
        assert list(clients.closed) == [0] and clients.closed[0] is not loop
    finally:
        loop.close()


def test_an_unbound_client_is_shared_by_every_loop_and_closed_by_aclose() -> None:
    clients = Clients()
    loops = affinity(clients, bound=False)
    barrier = threading.Barrier(3)

    async def work() -> Any:
        await asyncio.to_thread(barrier.wait, 30)
        return await use(loops)

    with ThreadPoolExecutor(3) as pool:
        used = {
            future.result(30) for future in [pool.submit(asyncio.run, work()) for _ in range(3)]
        }
    assert len(used) == 1  # one client kept: any other opened at the same moment is closed
    assert sorted(clients.closed) == sorted(set(clients.opened) - used)
    assert asyncio.run(use(loops)) in used
    asyncio.run(loops.aclose())
    assert sorted(clients.closed) == clients.opened
    assert asyncio.run(use(loops)) == len(clients.opened) - 1  # opens anew
    asyncio.run(loops.aclose())


def test_a_failed_open_closes_what_it_built_and_the_next_call_retries() -> None:
    clients = Clients()
    loops = affinity(clients)

    async def main() -> Any:
        clients.fail_next = True
        with pytest.raises(OSError, match="no credentials"):
            await loops.ensure_open()
        assert not loops.is_open_here() and list(clients.closed) == [0]
        return await use(loops)

    assert asyncio.run(main()) == 1


def test_aclose_during_an_open_leaves_no_client_behind(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    clients = Clients(close_fails=True)
    loops = affinity(clients)

    async def main() -> Any:
        clients.gate = asyncio.Event()
        opening = asyncio.create_task(use(loops))
        await asyncio.sleep(0)  # the open waits at the gate, its slot made
        closing = asyncio.create_task(loops.aclose())
        await asyncio.sleep(0)
        clients.gate.set()
        await closing
        return await opening

    # The open that aclose() overtook closed its client and opened another.
    assert asyncio.run(main()) == 1
    assert list(clients.closed) == [0, 1]
    assert failed_closes(debug_log) == [FAILED_CLOSE] * 2


def test_a_store_dropped_in_a_running_loop_closes_its_client_there(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    clients = Clients(close_fails=True)

    async def main() -> asyncio.AbstractEventLoop:
        loops = affinity(clients)
        await use(loops)
        del loops
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)
        assert list(clients.closed) == [0]  # closed while the loop goes on
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert clients.closed[0] is loop
    assert failed_closes(debug_log) == [FAILED_CLOSE]


def test_a_store_dropped_just_before_its_loop_ends_is_closed_at_shutdown() -> None:
    clients = Clients()

    slots: list[Any] = []

    async def main() -> None:
        loops = affinity(clients)
        await use(loops)
        slots.extend(loops._slots.by_loop.values())
        del loops
        gc.collect()  # the finalizer schedules the close: it will never start

    # asyncio.run's ending, with a garbage collection where one may always happen.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        del pending, task
        gc.collect()
        assert clients.closed == {} and Client.leaked == []  # still held, not collected
        assert slots[0] in loops_module._orphans  # kept alive for the shutdown
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    assert clients.closed == {0: loop}
    assert slots[0] not in loops_module._orphans  # and let go once closed


def test_forgotten_clients_are_never_closed() -> None:
    clients = Clients()

    async def main() -> None:
        loops = affinity(clients)
        await use(loops)
        loops.forget_all()  # a forked child: the clients are the parent's
        del loops
        gc.collect()

    asyncio.run(main())
    gc.collect()
    assert clients.closed == {} and Client.leaked == [0]
    Client.leaked.clear()


def test_outside_a_loop_the_client_is_the_one_opened_last() -> None:
    clients = Clients()
    loops = affinity(clients)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(use(loops))
        assert loops.client() == 0 and loops.loops() == [loop]
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert loops.client() is None and clients.closed == {0: loop}


def test_bound_is_the_default_and_the_finalizer_does_not_run_at_exit() -> None:
    clients = Clients()
    loops = LoopAffinity(lambda: "TestStore", clients.open)
    assert [asyncio.run(use(loops)) for _ in range(2)] == [0, 1]  # one client per loop
    assert list(clients.closed) == [0, 1]
    assert loops._finalizer.atexit is False  # at exit no loop runs to close on


def test_two_loops_opening_an_unbound_client_at_once_keep_the_first_stored(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    clients = Clients(close_fails=True)
    first_opened, release_first = threading.Event(), threading.Event()

    async def open_client(stack: contextlib.AsyncExitStack) -> Client:
        client = await clients.open(stack)
        if client == 0:  # the first open finishes after the second one
            first_opened.set()
            await asyncio.to_thread(release_first.wait, 30)
        return client

    loops = LoopAffinity(lambda: "TestStore", open_client, bound=False)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(asyncio.run, use(loops))
        assert first_opened.wait(30)
        assert asyncio.run(use(loops)) == 1  # stored as the shared client
        release_first.set()
        assert first.result(30) == 1  # the later open is closed, the stored one kept
    assert list(clients.closed) == [0]
    asyncio.run(loops.aclose())
    assert list(clients.closed) == [0, 1]
    assert failed_closes(debug_log) == [FAILED_CLOSE] * 2


def test_forgotten_clients_are_not_closed_at_shutdown_nor_by_aclose() -> None:
    clients = Clients()
    loops = affinity(clients)

    async def main(loops: LoopAffinity) -> None:
        await use(loops)
        loops.forget_all()

    asyncio.run(main(loops))  # the affinity lives on: its loop's shutdown runs the guard
    asyncio.run(loops.aclose())
    assert clients.closed == {}
    del loops
    gc.collect()
    assert Client.leaked == [0]
    Client.leaked.clear()

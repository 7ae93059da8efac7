"""ClientStore on its own: owned versus injected clients, async per loop and sync.

The provider here is a test subclass of our base class over the memory store: its
"SDK clients" are plain recorders (what is under test is which client each call uses,
and who builds and closes it); the cloud stores' own tests run the same logic on the
real SDKs against the emulators.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from sessionstore import deadline
from sessionstore.clients import ClientStore
from sessionstore.provider import Capabilities, ObjectInfo, sync_call
from sessionstore.stores.memory import MemorySessionStore
from sessionstore.sync import SyncSessionStore


class AsyncClient:
    """An async client: records its calls and the loop it is closed on."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.calls: list[tuple[str, str]] = []
        self.closed_on: asyncio.AbstractEventLoop | None = None

    async def call(self, key: str, *, tag: str) -> tuple[str, int, str, str]:
        self.calls.append((key, tag))
        return ("async", self.number, key, tag)

    async def close(self) -> None:
        assert self.closed_on is None, "closed twice"
        self.closed_on = asyncio.get_running_loop()


class SyncClient:
    """A sync client: records its calls, the thread that made each, and its close."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.calls: list[tuple[str, str]] = []
        self.threads: list[threading.Thread] = []
        self.closed = False

    def call(self, key: str, *, tag: str) -> tuple[str, int, str, str]:
        self.calls.append((key, tag))
        self.threads.append(threading.current_thread())
        return ("sync", self.number, key, tag)

    def close(self) -> None:
        assert not self.closed, "closed twice"
        self.closed = True


class Wrapped:
    """What a provider may make of an injected client (_adopt)."""

    def __init__(self, inner: AsyncClient) -> None:
        self.inner = inner

    async def call(self, key: str, *, tag: str) -> tuple[str, int, str, str]:
        _, number, key, tag = await self.inner.call(key, tag=tag)
        return ("wrapped", number, key, tag)


class Recording(ClientStore, MemorySessionStore):
    """A provider of ClientStore whose clients are recorders; `has()` makes one call."""

    capabilities = Capabilities(shared_across_processes=False)

    def __init__(self, *, client: Any = None) -> None:
        super().__init__()
        self._use_client(client)
        self.built: list[AsyncClient] = []
        #: Per `_head`: the client `_client` named and what its call returned.
        self.used: list[tuple[Any, Any]] = []

    async def _build_client(self, stack: contextlib.AsyncExitStack) -> Any:
        client = AsyncClient(len(self.built))
        self.built.append(client)
        stack.push_async_callback(client.close)
        return client

    async def _head(self, key: str) -> ObjectInfo:
        client = self._client
        self.used.append((client, await self._request(client.call, key, tag="head")))
        return await super()._head(key)


class RecordingSync(Recording):
    """The same provider with a sync client for the sync API."""

    capabilities = Capabilities(sync_client=True, shared_across_processes=False)

    def __init__(self, *, client: Any = None) -> None:
        super().__init__(client=client)
        self.sync_built: list[SyncClient] = []

    def _build_sync_client(self) -> Any:
        client = SyncClient(len(self.sync_built))
        self.sync_built.append(client)
        return client


class Adopting(Recording):
    """A provider that wraps an injected client."""

    def _adopt(self, injected: Any) -> Any:
        return Wrapped(injected)


async def used_here(store: Recording) -> tuple[Any, Any, asyncio.AbstractEventLoop]:
    """One call in the running loop: the client it used, `client`, the loop."""
    assert not await store.has("s1")
    return store.used[-1][0], store.client, asyncio.get_running_loop()


def test_an_owned_client_is_built_per_loop_and_closed_at_the_loops_end() -> None:
    store = Recording()
    assert store.client is None  # nothing built before the first call
    runs = [asyncio.run(used_here(store)) for _ in range(2)]
    assert store.built == [runs[0][0], runs[1][0]]
    for n, (used, client, loop) in enumerate(runs):
        assert used is client is store.built[n]
        assert used.closed_on is loop  # closed on its own loop, at its shutdown
    assert [result[:2] for _, result in store.used] == [("async", 0), ("async", 1)]
    for client in store.built:
        ((key, tag),) = client.calls
        assert key == "s1.json" and tag == "head"
    assert store.client is None  # every loop's client is closed


def test_outside_a_loop_the_client_is_the_last_opened_and_none_after_aclose() -> None:
    store = Recording()
    loop = asyncio.new_event_loop()
    try:
        used, client, _ = loop.run_until_complete(used_here(store))
        assert used is client is store.built[0]
        assert store.client is store.built[0] and store._client is store.built[0]
        loop.run_until_complete(store.aclose())
        assert store.built[0].closed_on is loop
        assert store.client is None and store._client is None
        # The next call opens a new client.
        assert loop.run_until_complete(used_here(store))[0] is store.built[1]
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert store.built[1].closed_on is loop


def test_an_injected_client_serves_every_loop_and_is_never_closed() -> None:
    injected = AsyncClient(7)
    store = Recording(client=injected)
    assert store.client is injected  # before first use
    loop = asyncio.new_event_loop()
    try:
        for _ in range(2):
            used, client, _ = loop.run_until_complete(used_here(store))
            assert used is client is injected
        assert store.client is injected
        loop.run_until_complete(store.aclose())
        assert store.client is injected  # still the caller's, after aclose
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    for _ in range(2):  # other loops, each shut down
        used, client, _ = asyncio.run(used_here(store))
        assert used is client is injected
    asyncio.run(store.aclose())
    assert store.built == [] and injected.closed_on is None
    assert [result for _, result in store.used] == [("async", 7, *injected.calls[0])] * 4
    assert store.client is injected


def test_an_injected_client_is_adopted_as_the_provider_wraps_it() -> None:
    injected = AsyncClient(3)
    store = Adopting(client=injected)
    assert store.client is injected  # not built yet: the client as given
    loop = asyncio.new_event_loop()
    try:
        used, client, _ = loop.run_until_complete(used_here(store))
        assert isinstance(used, Wrapped) and used.inner is injected and client is used
        assert store.used[-1][1][:2] == ("wrapped", 3)
        assert store.client is used  # outside the loop: the one opened last
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert store.client is injected and injected.closed_on is None and store.built == []


def test_serves_sync_only_with_a_sync_client_and_nothing_injected() -> None:
    assert not Recording()._serves_sync()
    assert not Recording(client=AsyncClient(0))._serves_sync()
    assert RecordingSync()._serves_sync()
    assert not RecordingSync(client=AsyncClient(0))._serves_sync()
    assert SyncSessionStore(RecordingSync()).on_callers_thread
    assert not SyncSessionStore(RecordingSync(client=AsyncClient(0))).on_callers_thread
    with pytest.raises(NotImplementedError):
        Recording()._build_sync_client()


def test_open_sync_builds_the_sync_client_and_close_sync_closes_it() -> None:
    store = RecordingSync()
    assert store._sync_client is None
    store._close_sync()  # nothing open: nothing to close
    store._open_sync()
    client = store._sync_client
    assert store.sync_built == [client] and not client.closed
    store._close_sync()
    assert client.closed and store._sync_client is None
    store._close_sync()  # once only
    assert store.sync_built == [client]


def test_a_sync_api_call_uses_the_sync_client_inline() -> None:
    store = RecordingSync()
    sync = SyncSessionStore(store)
    assert sync.on_callers_thread
    assert not sync.has("s1") and not sync.has("s2")
    (client,) = store.sync_built
    assert store.built == []  # no async client for sync calls
    assert [used for used, _ in store.used] == [client, client]
    assert [result[:2] for _, result in store.used] == [("sync", 0)] * 2
    assert [tag for _, tag in client.calls] == ["head", "head"]
    assert client.threads == [threading.current_thread()] * 2  # inline: no thread switch
    assert not sync_call()  # the mark is the call's only

    # The async API beside it keeps its own client.
    used, _, _ = asyncio.run(used_here(store))
    assert used is store.built[0] and store.used[-1][1][:2] == ("async", 0)

    sync.close()
    assert client.closed and store._sync_client is None
    assert not sync.has("s1")  # opens anew
    assert store.sync_built[1] is store.used[-1][0] and not store.sync_built[1].closed
    sync.close()
    assert store.sync_built[1].closed


def test_a_sync_call_runs_through_blocking() -> None:
    """Under a deadline `_blocking` runs a sync call on a thread of its own: `_request`
    hands the call, its arguments and keywords to `_blocking`."""
    store = RecordingSync()
    with SyncSessionStore(store) as sync, deadline(3600):
        assert not sync.has("s1")
    (client,) = store.sync_built
    assert client.calls == [("s1.json", "head")]
    assert client.threads[0] is not threading.current_thread()
    assert store.used[-1][1] == ("sync", 0, *client.calls[0])


def test_client_during_a_sync_call_is_the_sync_client() -> None:
    store = RecordingSync()
    seen: list[Any] = []

    async def look() -> None:
        await store._ensure_open()
        seen.append((store._client, store.client, sync_call()))

    sync = SyncSessionStore(store)
    sync._run(look())
    (client,) = store.sync_built
    # `client` names the async one (none yet); `_client` the running call's.
    assert seen == [(client, None, True)]
    sync.close()


def test_an_unbound_client_store_shares_one_client_between_loops() -> None:
    class Shared(Recording):
        capabilities = Capabilities(client_follows_loop=False, shared_across_processes=False)

    store = Shared()
    runs = [asyncio.run(used_here(store)) for _ in range(2)]
    assert store.built == [runs[0][0]] and runs[1][0] is store.built[0]
    assert store.built[0].closed_on is None  # belongs to no loop: kept until aclose
    asyncio.run(store.aclose())
    assert store.built[0].closed_on is not None and store.client is None

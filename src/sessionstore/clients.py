"""Owned-versus-injected SDK clients, async and sync, handled once for the cloud stores.

A store built with ``client=`` uses that client and never closes it; otherwise its
``_open`` builds one per event loop (:meth:`ClientStore._build_client`, which pushes
its closing onto the loop's exit stack) and ``aclose()`` or the loop's shutdown closes
it (docs/DESIGN.md, "Event loops, the sync API and deadlines"). A provider that also implements
:meth:`ClientStore._build_sync_client` serves the sync API with the provider's
synchronous SDK on the caller's thread; :attr:`ClientStore._client` is then the client
of the running call, and :meth:`ClientStore._request` calls it either way.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from sessionstore.base import ObjectSessionStore
from sessionstore.provider import sync_call

__all__ = ["ClientStore"]


class ClientStore(ObjectSessionStore):
    """A store over SDK clients, built on first use (one per event loop) or injected."""

    _injected: Any = None
    _sync_client: Any = None

    def _use_client(self, injected: Any) -> None:
        """Remember the injected client (None: build one per event loop on first use)."""
        self._injected = injected

    @property
    def client(self) -> Any:
        """The async SDK client of the running event loop (outside a loop, the one
        opened last); before first use, the injected client or None."""
        client = self._affinity.client()
        return self._injected if client is None else client

    @property
    def _client(self) -> Any:
        """The client of the running call: the sync client for a sync-API call."""
        return self._sync_client if sync_call() else self._affinity.client()

    async def _request(self, call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Make one SDK call of :attr:`_client`: awaited, or blocking for a sync client."""
        if sync_call():
            return await self._blocking(call, *args, **kwargs)
        return await call(*args, **kwargs)

    def _adopt(self, injected: Any) -> Any:
        """The client to use for an injected one (itself, unless a provider wraps it)."""
        return injected

    @abstractmethod
    async def _build_client(self, stack: contextlib.AsyncExitStack) -> Any:
        """Build the running loop's own client; push what closes it onto ``stack``."""

    def _build_sync_client(self) -> Any:
        """Build the store's synchronous client (optional: see the module)."""
        raise NotImplementedError

    def _close_sync_client(self, client: Any) -> None:
        """Close a client :meth:`_build_sync_client` built."""
        client.close()

    def _serves_sync(self) -> bool:
        # An injected client is an async one: sync calls then go through it too.
        return self._injected is None and self.capabilities.sync_client

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        if self._injected is None:
            return await self._build_client(stack)
        return self._adopt(self._injected)  # the caller's: never closed

    def _open_sync(self) -> None:
        self._sync_client = self._build_sync_client()

    def _close_sync(self) -> None:
        client, self._sync_client = self._sync_client, None
        if client is not None:
            self._close_sync_client(client)

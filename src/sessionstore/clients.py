"""Owned-versus-injected SDK clients, handled once for the cloud stores.

A store built with ``client=`` uses that client and never closes it; otherwise its
``_open`` builds one (:meth:`ClientStore._build_client`) and ``aclose()`` closes it
(:meth:`ClientStore._close_client`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from sessionstore.base import ObjectSessionStore

__all__ = ["ClientStore"]


class ClientStore(ObjectSessionStore):
    """A store over one SDK client, built on first use or injected by the caller."""

    _injected: Any = None
    _client: Any = None

    def _use_client(self, injected: Any) -> None:
        """Remember the injected client (None: build one on first use)."""
        self._injected = injected
        self._client = injected

    @property
    def client(self) -> Any:
        """The SDK client in use (None before first use unless injected)."""
        return self._client

    def _adopt(self, injected: Any) -> Any:
        """The client to use for an injected one (itself, unless a provider wraps it)."""
        return injected

    @abstractmethod
    async def _build_client(self) -> Any:
        """Build the store's own client."""

    @abstractmethod
    async def _close_client(self, client: Any) -> None:
        """Close a client :meth:`_build_client` built."""

    async def _open(self) -> None:
        if self._injected is None:
            self._client = await self._build_client()
        else:
            self._client = self._adopt(self._injected)

    async def _close(self) -> None:
        client = self._client
        if self._injected is not None:
            if client is not self._injected:
                self._client = None  # a view on the injected client: nothing to close
            return
        self._client = None
        if client is not None:
            await self._close_client(client)

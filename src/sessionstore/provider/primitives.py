"""The interface a provider implements: its primitives and what it declares.

Each primitive makes one request (the SDK's own retries off) and follows the rules
below; the contract suite (``tests/contract.py``, ``ProviderRulesContract``) checks
each rule with a test named after it. Everything else (key encoding, serialization,
retries, deadlines, error mapping, the write strategies) lives in the layers above
(docs/DESIGN.md, "Layers" and "Provider rules").
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any, ClassVar

from sessionstore.codec import Codec
from sessionstore.errors import StoreConfigError
from sessionstore.provider.faults import Failed, Fault
from sessionstore.provider.objects import Capabilities, Condition, ObjectInfo, Page, StoredObject
from sessionstore.urlparams import UrlParams

__all__ = ["Primitives"]


class Primitives(ABC):
    """What a provider implements and declares; the store's layers build on it.

    The rules every primitive follows:

    - **One request each**, made with the running call's client, the SDK's retries off.
    - **Missing objects**: ``_get`` and ``_head`` of a missing key raise
      :class:`~sessionstore.provider.NotFound`; ``_delete`` raises it or succeeds (S3
      answers 204), and the write layer treats both as done. A missing bucket or
      container is :class:`~sessionstore.provider.AccessDenied`, or ``NotFound`` from
      ``_list_page``.
    - **Conditions are real**: ``_put`` and ``_delete`` apply their
      :class:`~sessionstore.provider.Condition` atomically, in the request; a failed one
      raises :class:`~sessionstore.provider.PreconditionFailed` (or ``NotFound``).
    - **Versions never repeat for other content**: the token ``_put`` returns differs
      from every earlier token of the key, across deletes and re-creation, unless the
      bytes are the same (S3's ETag is their MD5); ``_head``, ``_get`` and
      ``_list_page`` report the current one.
    - **Metadata round-trips**: ``_head`` and ``_get`` return the metadata ``_put``
      wrote, keys and values as given (the write id and tick of the write path live
      there). A store that keeps none returns ``{}``; the base then reads the body.
    - **Listings hold direct children only**: ``_list_page(prefix)`` lists every
      object whose key is ``prefix`` followed by a name without ``/`` (a session key
      never has one; what lies under a deeper ``/`` belongs to another prefix), at most
      ``page_size`` of them in key order, and the token of the next page (None after
      the last).
    """

    #: Short provider name used in messages and logs (``"s3"``, ``"gcs"``, ...).
    provider: str = "object"
    #: What this store class offers (see :class:`~sessionstore.provider.Capabilities`).
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: The constructor argument a URL's host part fills (``"bucket"``), if any.
    url_location: ClassVar[str | None] = None
    #: For a store addressed by a local path instead (``file:///dir``,
    #: ``sqlite:///x.db``): what the path names, for messages (``"directory"``). The
    #: path is then the first constructor argument, and the URL names no host.
    url_path: ClassVar[str | None] = None
    #: Query parameters of this store's URLs beyond the common ones: name -> converter.
    url_params: ClassVar[UrlParams] = {}
    #: Query names that stand for another keyword (``{"region": "region_name"}``).
    url_aliases: ClassVar[Mapping[str, str]] = {}

    _codec: Codec

    @classmethod
    def _url_arguments(
        cls, scheme: str, host: str, path: str, url: str
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Constructor arguments from a URL's host and path (``url`` is query-free).

        With :attr:`url_location`, the host fills that argument and the path (if any)
        is the prefix; with :attr:`url_path`, the path (``scheme:///abs`` or
        ``scheme:relative``) is the first argument; with neither, the URL must name no
        location. Query parameters and keyword options override what this returns.

        Raises:
            StoreConfigError: the host or path does not fit the store.
        """
        if cls.url_path is not None:
            if host not in ("", "localhost"):
                raise StoreConfigError(
                    f"{scheme} URL {url!r} names host {host!r};"
                    f" use {scheme}:///abs/path or {scheme}:relative/path"
                )
            if not path:
                raise StoreConfigError(f"{scheme} URL {url!r} has no {cls.url_path}")
            return (path,), {}
        if cls.url_location is None:
            if host or path.strip("/"):
                raise StoreConfigError(f"{scheme}:// takes no location, got {url!r}")
            return (), {}
        if not host:
            raise StoreConfigError(
                f"store URL {url!r} names no {cls.url_location}:"
                f" use {scheme}://{cls.url_location.upper()}/prefix/"
            )
        return (host,), ({"prefix": path.lstrip("/")} if path.strip("/") else {})

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store lives, for messages: ``s3://bucket``, a directory, ..."""

    @abstractmethod
    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        condition: Condition,
    ) -> str:
        """Write ``body`` at ``key`` if ``condition`` holds; return the new version token."""

    @abstractmethod
    async def _get(self, key: str) -> StoredObject:
        """Read the object at ``key``.

        Call :meth:`_check_stored_size` with the announced size before reading the body.
        """

    @abstractmethod
    async def _head(self, key: str) -> ObjectInfo:
        """Read the object's version, last-modified time, size and metadata."""

    @abstractmethod
    async def _delete(self, key: str, *, condition: Condition) -> None:
        """Delete the object at ``key`` if ``condition`` (unconditional or a version)
        holds."""

    @abstractmethod
    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        """List one page of the objects directly under ``prefix``."""

    def _classify(self, exc: Exception) -> type[Fault]:
        """The fault an exception raised by a primitive (or ``_open``) stands for."""
        return Failed

    def _error_detail(self, exc: Exception) -> str:
        """A short, secret-free description of an SDK exception (code and status)."""
        return type(exc).__name__

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        """Build the running event loop's SDK client and return it (optional hook).

        Called before the loop's first primitive; push whatever closes the client onto
        ``stack`` (never an injected client), and nothing that holds the store, so an
        abandoned store can still be collected. Without
        ``capabilities.client_follows_loop``, the first loop's client serves every loop.
        """
        return None

    def _open_sync(self) -> None:
        """Build what sync-API calls use (a synchronous SDK client), blocking.

        Implement it (and :meth:`_close_sync`) exactly when the class declares
        ``Capabilities(sync_client=True)``.
        """
        raise NotImplementedError

    def _close_sync(self) -> None:  # noqa: B027 - an optional hook, not a required method
        """Close what :meth:`_open_sync` built, blocking."""

    def _serves_sync(self) -> bool:
        """Whether this instance runs sync-API calls on the caller's thread.

        The class's ``capabilities.sync_client``; a store with an injected async client
        overrides it to say no.
        """
        return self.capabilities.sync_client

    def _worker_pool(self) -> Executor | None:
        """Where blocking calls of async callers run (None: the running loop's default
        executor). A client bound to one thread (sqlite3) gives a one-thread pool."""
        return None

    def _check_stored_size(self, key: str, size: int | None) -> None:
        """Raise SnapshotTooLargeError before a body bigger than the limit is read."""
        self._codec.check_size(size, self._where(key))

    def _where(self, key: str) -> str:
        """``location/key``, for messages."""
        return f"{self.location}/{key}"

    @property
    def place(self) -> str:
        """The physical place the sessions live in: equal places hold the same objects.

        Two spellings of one store (an alias scheme, a trailing slash) have one place.
        """
        return f"{self.location}/{self.prefix}"

    prefix: str

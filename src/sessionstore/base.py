"""ObjectSessionStore: the public API on top of a few provider primitives.

A provider implements only private primitives (``_put``, ``_get``, ``_head``,
``_delete``, ``_list_page``, optionally ``_open`` (one client per event loop) and,
for the sync API, ``_open_sync``/``_close_sync``) and ``_classify``, which names the private fault
(:mod:`sessionstore.provider`) an SDK exception stands for.
Everything else lives here, once: key encoding, serialization and compression, the
size guard, retries, error mapping, TTL, the stale-tick guard and logging
(docs/DESIGN.md, "Layers").
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

from sessionstore.codec import Codec, Compression, Serializer
from sessionstore.deadline import DeadlinePassed, attempt_budget, remaining
from sessionstore.errors import (
    ConflictError,
    SessionStoreError,
    SnapshotEncodeError,
    StaleSnapshotError,
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
)
from sessionstore.forks import renew_in_child
from sessionstore.keys import decode_key, make_key, normalize_prefix
from sessionstore.loops import LoopAffinity
from sessionstore.provider import (
    META_ENCODING,
    META_TICK,
    META_WRITE_ID,
    ListedObject,
    ObjectInfo,
    Page,
    StoredObject,
    _AccessDenied,
    _Failed,
    _Fault,
    _NotFound,
    _PreconditionFailed,
    _Transient,
    redact,
    sync_call,
)
from sessionstore.retry import RetryPolicy
from sessionstore.types import SessionInfo, SessionSnapshot, Versioned
from sessionstore.urlparams import UrlParams

__all__ = ["ObjectSessionStore"]

_log = logging.getLogger("sessionstore")
T = TypeVar("T")

_STALE_LOOP_LIMIT = 64


class ObjectSessionStore(ABC):
    """A session store over an object store: the one base class of every store.

    It implements the agentick ``SessionStore`` interface (``save``, ``load``,
    ``delete``, ``list``, ``has``) plus versioned reads, conditional writes, TTL and
    the stale-tick guard. Use it as ``async with store:`` or call :meth:`aclose`.

    Raises:
        StoreConfigError: an option is invalid (at construction).
    """

    #: Short provider name used in messages and logs (``"s3"``, ``"gcs"``, ...).
    provider: str = "object"
    #: The constructor argument a URL's host part fills (``"bucket"``), if any.
    url_location: ClassVar[str | None] = None
    #: Query parameters of this store's URLs beyond the common ones: name -> converter.
    url_params: ClassVar[UrlParams] = {}
    #: Query names that stand for another keyword (``{"region": "region_name"}``).
    url_aliases: ClassVar[Mapping[str, str]] = {}
    #: Whether the SDK client belongs to the event loop it was built on (aiohttp-based
    #: SDKs): then each loop gets a client of its own (sessionstore.loops).
    client_follows_loop: ClassVar[bool] = True

    def __init__(
        self,
        *,
        prefix: str = "",
        retry: RetryPolicy | None = None,
        compression: Compression | None = None,
        compress_min_bytes: int = 1024,
        max_snapshot_bytes: int = 64 * 1024 * 1024,
        ttl: timedelta | None = None,
        reject_stale: bool = False,
        serializer: Serializer | None = None,
    ) -> None:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise StoreConfigError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        _check_ttl(ttl, "ttl")
        self.prefix = normalize_prefix(prefix)
        self.retry = retry or RetryPolicy()
        self.ttl = ttl
        self.reject_stale = bool(reject_stale)
        self._codec = Codec(serializer, compression, compress_min_bytes, max_snapshot_bytes)
        self._affinity = self._new_affinity()
        self._sync_lock = threading.Lock()  # guards opening and closing the sync state
        self._sync_open = False
        renew_in_child(self)

    def _new_affinity(self) -> LoopAffinity:
        return LoopAffinity(
            lambda: repr(self),
            lambda stack: self._translated(self._open(stack)),
            bound=self.client_follows_loop,
        )

    @classmethod
    def _url_arguments(
        cls, scheme: str, host: str, path: str, url: str
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Constructor arguments from a URL's host and path (``url`` is query-free).

        With :attr:`url_location`, the host fills that argument and the path (if any)
        is the prefix; without, the URL must name no location. Query parameters and
        keyword options override what this returns.

        Raises:
            StoreConfigError: the host or path does not fit the store.
        """
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

    # ------------------------------------------------------------------ primitives

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store lives, for messages: ``s3://bucket``, a directory, ..."""

    @property
    def place(self) -> str:
        """The physical place the sessions live in: equal places hold the same objects.

        Two spellings of one store (an alias scheme, a trailing slash) have one place.
        """
        return f"{self.location}/{self.prefix}"

    @abstractmethod
    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        """Write ``body`` at ``key`` in one request; return the new version token."""

    @abstractmethod
    async def _get(self, key: str) -> StoredObject:
        """Read the object at ``key`` in one request.

        Call :meth:`_check_stored_size` with the announced size before reading the body.
        """

    @abstractmethod
    async def _head(self, key: str) -> ObjectInfo:
        """Read the object's version, last-modified time and metadata in one request."""

    @abstractmethod
    async def _delete(self, key: str, *, if_version: str | None) -> None:
        """Delete the object at ``key`` in one request."""

    @abstractmethod
    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        """List one page of the objects directly under ``prefix``."""

    def _classify(self, exc: Exception) -> type[_Fault]:
        """The fault an exception raised by a primitive (or ``_open``) stands for."""
        return _Failed

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        """Build the running event loop's SDK client and return it (optional hook).

        Called before the loop's first primitive; push whatever closes the client onto
        ``stack`` (never an injected client), and nothing that holds the store, so an
        abandoned store can still be collected. With :attr:`client_follows_loop` false,
        the first loop's client serves every loop.
        """
        return None

    def _worker_pool(self) -> Executor | None:
        """Where :meth:`_blocking` runs blocking calls for async callers (None: the
        running loop's default executor)."""
        return None

    def _open_sync(self) -> None:
        """Build what sync-API calls use (a synchronous SDK client), blocking.

        A provider that implements it serves :class:`SyncSessionStore` on the caller's
        thread; one that does not is run on a private event loop thread instead.
        """
        raise NotImplementedError

    def _close_sync(self) -> None:  # noqa: B027 - an optional hook, not a required method
        """Close what :meth:`_open_sync` built, blocking."""

    def _serves_sync(self) -> bool:
        """Whether sync-API calls can run on the caller's thread (see :meth:`_open_sync`)."""
        return type(self)._open_sync is not ObjectSessionStore._open_sync

    async def _blocking(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking call: inline for a sync-API call, else in a worker thread.

        A sync-API call inside a :func:`sessionstore.deadline` block runs on a daemon
        thread of its own, so that the deadline can cut it off and a cut-off request
        (still blocked in a socket read) never delays the process's exit. The caller's
        context (its deadline, :func:`sync_call`) goes along.
        """
        if sync_call():
            if remaining() is None:
                return fn(*args, **kwargs)
            return await _on_daemon_thread(functools.partial(fn, *args, **kwargs))
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._worker_pool(), call)

    def _error_detail(self, exc: Exception) -> str:
        """A short, secret-free description of an SDK exception (code and status)."""
        return type(exc).__name__

    # ------------------------------------------------------------------ translation

    async def _translated(self, call: Awaitable[T]) -> T:
        """Await one primitive call; an SDK error leaves as a fault, chained to it.

        The one place where SDK exceptions are sorted (docs/DESIGN.md, "Errors").
        """
        try:
            return await call
        except (_Fault, SessionStoreError):
            raise
        except Exception as exc:
            raise self._classify(exc)(redact(self._error_detail(exc))) from exc

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

    def _what(self, op: str, key: str | None) -> str:
        return f"{self.provider} {op} {self._where(key) if key else self.location}"

    async def _call(self, op: str, key: str | None, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` under the retry policy (which retries :class:`_Transient`).

        A failed condition and a missing object leave as their faults, for the caller
        to say what they mean; every other fault becomes a public error.
        """
        what = self._what(op, key)
        number = 0
        started = time.monotonic()
        try:
            async with attempt_budget():  # opening a client is within the deadline too
                await self._ensure_open()
            async for state in self.retry.retrying(_Transient, lambda: what):
                with state:
                    number = state.retry_state.attempt_number
                    async with attempt_budget():  # the caller's sessionstore.deadline()
                        result = await self._translated(attempt())
                    _log.debug(
                        "sessionstore: %s ok (attempt %d, %.1f ms)",
                        what,
                        number,
                        (time.monotonic() - started) * 1000,
                    )
                    return result
        except (_NotFound, _PreconditionFailed) as fault:
            # For the caller to interpret; one it does not still reads as a public error.
            fault.attempts = number
            fault.args = (f"{what} failed ({fault.detail})",)
            raise
        except DeadlinePassed as exc:
            when = f"on attempt {number}" if number else "while opening its client"
            raise StoreUnavailableError(
                f"{what} ran out of the caller's deadline (sessionstore.deadline) {when};"
                " a cut-off write may or may not have landed"
            ) from exc
        except _Transient as fault:
            within = "" if remaining() is None else " within the caller's deadline"
            raise StoreUnavailableError(
                f"{what} failed after {number} attempt(s){within} ({fault.detail});"
                " the store is unavailable"
            ) from _cause(fault)
        except _AccessDenied as fault:
            raise StoreAccessError(
                f"{what} was refused ({fault.detail}): check the credentials and that"
                f" {self.location} exists"
            ) from _cause(fault)
        except _Fault as fault:
            raise SessionStoreError(f"{what} failed ({fault.detail})") from _cause(fault)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _unless_missing(self, read: Awaitable[T]) -> T | None:
        """What ``read`` returns, or None if the object is not there."""
        try:
            return await read
        except _NotFound:
            return None

    def _conflict(self, op: str, key: str, why: str) -> ConflictError:
        return ConflictError(f"{self.provider} {op} {self._where(key)}: {why}")

    def _missing_store(self, op: str, key: str) -> StoreAccessError:
        return StoreAccessError(
            f"{self.provider} {op} {self._where(key)}: {self.location} does not exist"
        )

    # ------------------------------------------------------------------ helpers

    def _check_stored_size(self, key: str, size: int | None) -> None:
        """Raise SnapshotTooLargeError before a body bigger than the limit is read."""
        self._codec.check_size(size, self._where(key))

    def _key(self, session_id: str) -> str:
        """The key of ``session_id``; InvalidSessionIdError if it does not fit."""
        return make_key(self.prefix, session_id)

    def _where(self, key: str) -> str:
        return f"{self.location}/{key}"

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _expired(self, last_modified: datetime | None) -> bool:
        if self.ttl is None or last_modified is None:
            return False
        return self._now() - last_modified > self.ttl

    # ------------------------------------------------------------------ write path

    async def save(
        self,
        session_id: str,
        snapshot: SessionSnapshot | Mapping[str, Any],
        *,
        if_version: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``snapshot`` under ``session_id`` and return the new version token.

        With ``if_version`` the write succeeds only if the stored version is that one;
        with ``if_absent`` only if no session is stored. With ``reject_stale`` a
        snapshot whose ``tick`` is lower than the stored one is refused. An expired
        session counts as absent: ``if_absent`` replaces it (on condition of its
        version, so a writer refreshing it meanwhile wins) and its tick does not count.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            SnapshotEncodeError: not a JSON object, or not serializable (nothing sent).
            SnapshotTooLargeError: over ``max_snapshot_bytes`` (nothing sent).
            ConflictError: the condition failed; StaleSnapshotError for an older tick.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        if if_version is not None and if_absent:
            raise StoreConfigError("save() takes if_version or if_absent, not both")
        key = self._key(session_id)
        encoded = self._codec.encode(snapshot)
        metadata: dict[str, str] = {}
        if encoded.encoding:
            metadata[META_ENCODING] = encoded.encoding
        if self.reject_stale:
            tick = snapshot.get("tick")
            if type(tick) is not int:
                raise SnapshotEncodeError(
                    f"reject_stale needs an integer 'tick' in the snapshot, got {tick!r}"
                )
            metadata[META_TICK] = str(tick)
            return await self._save_unless_stale(
                key, encoded.body, metadata, tick, if_version, if_absent
            )
        if if_absent:
            return await self._save_if_absent(key, encoded.body, metadata)
        if if_version is not None:
            return await self._save_if(key, encoded.body, metadata, if_version, False)
        return await self._save_plain(key, encoded.body, metadata)

    async def _save_plain(self, key: str, body: bytes, metadata: Mapping[str, str]) -> str:
        """Step 1: one unconditional PUT, under the retry policy.

        It sends no write id: one metadata header less for the SDK to build and sign
        on every save (benchmarks/NOTES.md).
        """
        put = functools.partial(self._write, key, body, metadata, None, False)
        return await self._saving(key, body, put, None, False)

    async def _save_if(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        """Step 2: a conditional PUT that recognises its own earlier write.

        The PUT carries a fresh write id. If the condition fails, one HEAD looks at the
        object: if it holds this write id, an earlier attempt whose response was lost
        (or the HTTP client's own silent re-send on a dropped keep-alive connection;
        aiohttp does that for PUT) landed, and that is success.
        """
        stamped = {**metadata, META_WRITE_ID: uuid.uuid4().hex}
        put = functools.partial(self._write_or_own, key, body, stamped, if_version, if_absent)
        return await self._saving(key, body, put, if_version, if_absent)

    async def _save_if_absent(self, key: str, body: bytes, metadata: Mapping[str, str]) -> str:
        """Step 2, ``if_absent``: an expired object counts as absent.

        It is replaced on condition of the version it was seen expired at, so a writer
        that refreshes it meanwhile keeps it (and this save is a conflict).
        """
        try:
            return await self._save_if(key, body, metadata, None, True)
        except ConflictError:
            if self.ttl is None:
                raise
            info = await self._head_or_none(key)
            if info is None:  # deleted meanwhile: absent after all
                return await self._save_if(key, body, metadata, None, True)
            if not self._expired(info.last_modified):
                raise
        try:
            return await self._save_if(key, body, metadata, info.version, False)
        except ConflictError as exc:
            raise self._conflict("save", key, "it already exists") from exc

    async def _save_unless_stale(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        tick: int,
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        """Step 3 (``reject_stale``): refuse a tick older than the stored one.

        The version the HEAD saw becomes the PUT's condition, so a writer landing in
        between makes the loop look again; the caller's own condition, if any, takes
        the place of that one.
        """
        for _ in range(_STALE_LOOP_LIMIT):
            stored = await self._stored_tick(key)
            if stored is not None and stored[0] is not None and stored[0] > tick:
                raise StaleSnapshotError(
                    f"{self.provider} save {self._where(key)}: tick {tick} is older than"
                    f" the stored tick {stored[0]}"
                )
            if if_absent:
                return await self._save_if_absent(key, body, metadata)
            if if_version is not None:
                return await self._save_if(key, body, metadata, if_version, False)
            try:
                if stored is None:
                    return await self._save_if(key, body, metadata, None, True)
                return await self._save_if(key, body, metadata, stored[1], False)
            except ConflictError:
                continue  # another writer landed between our HEAD and PUT: look again
        raise self._conflict("save", key, "too many concurrent writers (reject_stale loop)")

    async def _write(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        """One PUT through the provider's primitive."""
        return await self._translated(
            self._put(
                key,
                body,
                content_type=self._codec.content_type,
                metadata=metadata,
                if_version=if_version,
                if_absent=if_absent,
            )
        )

    async def _write_or_own(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        """One conditional PUT; a failed condition that meets this write's id is success."""
        try:
            return await self._write(key, body, metadata, if_version, if_absent)
        except (_PreconditionFailed, _NotFound):
            info = await self._head_once(key)
            if info is not None and info.metadata.get(META_WRITE_ID) == metadata[META_WRITE_ID]:
                return info.version
            raise

    async def _saving(
        self,
        key: str,
        body: bytes,
        put: Callable[[], Awaitable[str]],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        """Run ``put`` under the retry policy; say what a failed condition means."""
        try:
            version = await self._call("save", key, put)
        except _NotFound as fault:
            if not if_version:
                raise self._missing_store("save", key) from _cause(fault)
            raise self._failed_condition(key, fault, if_version, if_absent) from _cause(fault)
        except _PreconditionFailed as fault:
            raise self._failed_condition(key, fault, if_version, if_absent) from _cause(fault)
        _log.debug("sessionstore: saved %s (%d bytes)", self._where(key), len(body))
        return version

    def _failed_condition(
        self, key: str, fault: _Fault, if_version: str | None, if_absent: bool
    ) -> ConflictError:
        why = "it already exists" if if_absent else f"it is not at version {if_version}"
        if fault.attempts > 1:
            why += " (an earlier attempt's response was lost; another writer's object is there now)"
        return self._conflict("save", key, why)

    async def _stored_tick(self, key: str) -> tuple[int | None, str] | None:
        """(tick, version) of the stored object, or None if absent.

        The tick comes from metadata (one HEAD); objects written without it (by another
        client) are read whole to find it. An expired object's tick does not count.
        """
        info = await self._head_or_none(key)
        if info is None:
            return None
        if self._expired(info.last_modified):
            return None, info.version
        raw = info.metadata.get(META_TICK)
        if raw is not None:
            try:
                return int(raw), info.version
            except ValueError:
                pass
        got = await self._unless_missing(self._call("load", key, functools.partial(self._get, key)))
        if got is None:
            return None
        tick = self._codec.decode(got.body, self._where(key)).get("tick")
        return (tick if type(tick) is int else None), got.info.version

    async def _head_or_none(self, key: str) -> ObjectInfo | None:
        """One HEAD under the retry policy; None if absent."""
        return await self._unless_missing(
            self._call("head", key, functools.partial(self._head, key))
        )

    async def _head_once(self, key: str) -> ObjectInfo | None:
        """One HEAD without retries (inside an attempt); None if absent."""
        return await self._unless_missing(self._translated(self._head(key)))

    # ------------------------------------------------------------------ read path

    async def load(self, session_id: str) -> SessionSnapshot | None:
        """Return the snapshot saved under ``session_id``, or None if absent or expired.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            SnapshotDecodeError: the stored object is not a snapshot.
            SnapshotTooLargeError: the stored object exceeds ``max_snapshot_bytes``.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        versioned = await self.load_versioned(session_id)
        return None if versioned is None else versioned.snapshot

    async def load_versioned(self, session_id: str) -> Versioned | None:
        """Like :meth:`load`, with the version token to pass to ``save(if_version=)``.

        Raises:
            The errors of :meth:`load`.
        """
        key = self._key(session_id)
        got = await self._unless_missing(self._call("load", key, functools.partial(self._get, key)))
        if got is None or self._expired(got.info.last_modified):
            return None
        snapshot = self._codec.decode(got.body, self._where(key))
        return Versioned(snapshot, got.info.version)

    async def has(self, session_id: str) -> bool:
        """Whether a (non-expired) session is stored, with one HEAD request.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        key = self._key(session_id)
        info = await self._head_or_none(key)
        return info is not None and not self._expired(info.last_modified)

    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Delete the session; an absent session is not an error.

        With ``if_version``, delete only if the stored version is that one.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            ConflictError: ``if_version`` did not match the stored version.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        key = self._key(session_id)
        try:
            await self._call("delete", key, functools.partial(self._delete_once, key, if_version))
        except _PreconditionFailed as fault:
            raise self._conflict("delete", key, f"it is not at version {if_version}") from _cause(
                fault
            )

    async def _delete_once(self, key: str, if_version: str | None) -> None:
        """One DELETE; an object already gone (or deleted by our earlier attempt) is done."""
        try:
            await self._translated(self._delete(key, if_version=if_version))
        except _NotFound:
            return
        except _PreconditionFailed:
            if await self._head_once(key) is None:
                return  # absent (some services answer 412 there), or our earlier attempt
            raise

    async def _list_once(self, page_size: int, token: str | None) -> Page:
        return await self._list_page(self.prefix, page_size=page_size, token=token)

    async def _pages(self, page_size: int) -> AsyncIterator[tuple[str, ListedObject]]:
        if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise StoreConfigError(f"page_size must be an int in 1..1000, not {page_size!r}")
        token: str | None = None
        while True:
            try:
                page = await self._call(
                    "list", None, functools.partial(self._list_once, page_size, token)
                )
            except _NotFound as fault:  # a listing found no bucket or container
                raise StoreAccessError(
                    f"{self._what('list', None)} failed ({fault.detail}):"
                    f" {self.location} does not exist"
                ) from _cause(fault)
            for obj in page.objects:
                session_id = decode_key(self.prefix, obj.key)
                if session_id is not None:
                    yield session_id, obj
            token = page.next_token
            if not token:
                return

    async def iter_info(self, *, page_size: int = 1000) -> AsyncIterator[SessionInfo]:
        """Yield size, last-modified time and version of every non-expired session.

        Uses only the listing (one request per page), never a read of the sessions.

        Raises:
            The errors of :meth:`iter_ids`.
        """
        async for session_id, obj in self._pages(page_size):
            if not self._expired(obj.last_modified):
                yield SessionInfo(session_id, obj.size, obj.last_modified, obj.version)

    async def iter_ids(self, *, page_size: int = 1000) -> AsyncIterator[str]:
        """Yield every stored, non-expired session id, one listing page at a time.

        Objects under the prefix that are not in this store's format are skipped.

        Raises:
            StoreConfigError: ``page_size`` is not in 1..1000.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        async for info in self.iter_info(page_size=page_size):
            yield info.session_id

    async def list(self) -> list[str]:
        """Return every stored, non-expired session id, sorted.

        Raises:
            The errors of :meth:`iter_ids`.
        """
        return sorted([session_id async for session_id in self.iter_ids()])

    async def purge_expired(self, ttl: timedelta | None = None) -> int:
        """Delete every session not saved within ``ttl`` (default: the store's ttl).

        Each delete is conditional on the listed version, so a session saved again
        meanwhile survives. Returns the number of sessions deleted.

        Raises:
            StoreConfigError: ``ttl`` is not a positive timedelta, or neither it nor the
                store's ``ttl`` is set.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        _check_ttl(ttl, "purge_expired() ttl")
        limit = ttl if ttl is not None else self.ttl
        if limit is None:
            raise StoreConfigError("purge_expired() needs a ttl: pass one or set ttl= on the store")
        now = self._now()
        expired = [
            (session_id, obj.version)
            async for session_id, obj in self._pages(1000)
            if obj.last_modified is not None and now - obj.last_modified > limit
        ]
        deleted = 0
        for session_id, version in expired:
            try:
                await self.delete(session_id, if_version=version)
            except ConflictError:
                continue
            deleted += 1
        return deleted

    async def aclose(self) -> None:
        """Close the SDK clients the store built, every event loop's (an injected client
        stays open); the next call opens new ones."""
        await self._affinity.aclose()
        self._end_sync()

    async def __aenter__(self) -> Self:
        await self._call("open", None, _no_request)  # errors mapped like any operation
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r}, prefix={self.prefix!r})"


def _check_ttl(ttl: object, what: str) -> None:
    """StoreConfigError unless ``ttl`` is None or a positive timedelta."""
    if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
        raise StoreConfigError(f"{what} must be a positive timedelta or None, not {ttl!r}")


async def _no_request() -> None:
    """Nothing to do once ``_call`` has opened the store."""


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


def _cause(fault: _Fault) -> BaseException:
    """The SDK exception behind a fault (the fault itself if a primitive raised it)."""
    return fault.__cause__ or fault

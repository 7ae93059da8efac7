"""ObjectSessionStore: the public API on top of a few provider primitives.

A provider implements only private primitives (``_put``, ``_get``, ``_head``,
``_delete``, ``_list_page``, optionally ``_open``/``_close``) and ``_classify``, which
sorts an SDK exception into an :class:`ErrorKind`. Everything else lives here, once:
key encoding, serialization and compression, the size guard, retries, error mapping,
TTL, the stale-tick guard and logging.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar

from sessionstore.codec import Codec, Compression, Serializer
from sessionstore.errors import (
    ConflictError,
    InvalidSessionIdError,
    SessionStoreError,
    SnapshotEncodeError,
    StaleSnapshotError,
    StoreAccessError,
    StoreConfigError,
    StoreUnavailableError,
)
from sessionstore.keys import decode_key, make_key, normalize_prefix
from sessionstore.retry import RetryPolicy
from sessionstore.types import SessionInfo, SessionSnapshot, Versioned

__all__ = [
    "META_ENCODING",
    "META_TICK",
    "META_WRITE_ID",
    "ErrorKind",
    "ListedObject",
    "ObjectInfo",
    "ObjectSessionStore",
    "Page",
    "StoreOptions",
    "StoredObject",
]

_log = logging.getLogger("sessionstore")
T = TypeVar("T")

#: Object metadata written by the base (providers may rename them to fit their rules).
META_ENCODING = "sessionstore-encoding"
META_TICK = "sessionstore-tick"
META_WRITE_ID = "sessionstore-write-id"

_STALE_LOOP_LIMIT = 64
_SECRET_PATTERNS = re.compile(
    r"(?i)((?:sig|signature|x-amz-signature|x-amz-security-token|accountkey|sharedaccesssignature"
    r"|se|sp|sv|skoid|sktid|skv|access_token|client_secret)=)[^&;\s'\"]+"
)


class ErrorKind(enum.Enum):
    """How the base treats an exception raised by a provider primitive."""

    TRANSIENT = "transient"  # retried: throttling, 5xx, timeouts, connection resets
    NOT_FOUND = "not-found"  # the object (not the bucket) does not exist
    PRECONDITION = "precondition"  # a conditional request failed (412)
    ACCESS = "access"  # 401/403, missing bucket or container
    OTHER = "other"  # anything else: fails at once


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD (or the headers of a GET) says about an object."""

    version: str
    last_modified: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A whole object as a GET returns it."""

    body: bytes
    info: ObjectInfo


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One entry of a prefix listing."""

    key: str
    last_modified: datetime | None = None
    version: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a prefix listing and the token of the next page, if any."""

    objects: list[ListedObject]
    next_token: str | None = None


class StoreOptions(TypedDict, total=False):
    """Keyword options every store takes (defined here once, DESIGN §2)."""

    retry: RetryPolicy
    compression: Compression | None
    compress_min_bytes: int
    max_snapshot_bytes: int
    ttl: timedelta | None
    reject_stale: bool
    serializer: Serializer | None


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
    #: Longest file name (the part after the last ``/``) the backend accepts, if limited.
    max_name_bytes: int | None = None

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
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
            raise StoreConfigError(f"ttl must be a positive timedelta or None, not {ttl!r}")
        self.prefix = normalize_prefix(prefix)
        self.retry = retry or RetryPolicy()
        self.ttl = ttl
        self.reject_stale = bool(reject_stale)
        self._codec = Codec(serializer, compression, compress_min_bytes, max_snapshot_bytes)
        self._open_lock = asyncio.Lock()
        self._opened = False

    # ------------------------------------------------------------------ primitives

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

    @abstractmethod
    def _classify(self, exc: Exception) -> ErrorKind:
        """Sort an exception raised by a primitive into an :class:`ErrorKind`."""

    async def _open(self) -> None:  # noqa: B027 - an optional hook, not a required method
        """Build the SDK client (called once, before the first primitive)."""

    async def _close(self) -> None:  # noqa: B027 - an optional hook, not a required method
        """Close what :meth:`_open` built (never an injected client)."""

    def _error_detail(self, exc: Exception) -> str:
        """A short, secret-free description of an SDK exception (code and status)."""
        return type(exc).__name__

    # ------------------------------------------------------------------ helpers

    def _check_stored_size(self, key: str, size: int | None) -> None:
        """Raise SnapshotTooLargeError before a body bigger than the limit is read."""
        self._codec.check_size(size, self._where(key))

    def _key(self, session_id: str) -> str:
        """The key of ``session_id``; InvalidSessionIdError if it does not fit."""
        key = make_key(self.prefix, session_id)
        if self.max_name_bytes is not None:
            name = key.rsplit("/", 1)[-1].encode("utf-8")
            if len(name) > self.max_name_bytes:
                raise InvalidSessionIdError(
                    f"session id of {len(session_id)} characters makes a {self.provider} name"
                    f" of {len(name)} bytes; the limit is {self.max_name_bytes}"
                )
        return key

    def _where(self, key: str) -> str:
        return f"{self.location}/{key}"

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _expired(self, last_modified: datetime | None) -> bool:
        if self.ttl is None or last_modified is None:
            return False
        return self._now() - last_modified > self.ttl

    def _kind(self, exc: BaseException) -> ErrorKind:
        if isinstance(exc, ConflictError):
            return ErrorKind.PRECONDITION
        if isinstance(exc, SessionStoreError) or not isinstance(exc, Exception):
            return ErrorKind.OTHER
        return self._classify(exc)

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:
            if not self._opened:
                await self._open()
                self._opened = True

    async def _call(
        self,
        op: str,
        key: str | None,
        fn: Callable[[int], Awaitable[T]],
        *,
        passthrough: tuple[ErrorKind, ...] = (ErrorKind.NOT_FOUND, ErrorKind.PRECONDITION),
    ) -> T:
        """Run one primitive call under the retry policy; map what escapes.

        ``fn`` gets the attempt number (1-based). Errors of the ``passthrough`` kinds
        are re-raised unchanged for the caller to interpret; everything else is
        mapped onto the error tree.
        """
        what = f"{self.provider} {op} {self._where(key) if key else self.location}"
        attempt = 0
        started = time.monotonic()
        try:
            await self._ensure_open()
            async for state in self.retry.retrying(
                lambda e: self._kind(e) is ErrorKind.TRANSIENT, lambda: what
            ):
                with state:
                    attempt = state.retry_state.attempt_number
                    result = await fn(attempt)
                    _log.debug(
                        "sessionstore: %s ok (attempt %d, %.1f ms)",
                        what,
                        attempt,
                        (time.monotonic() - started) * 1000,
                    )
                    return result
        except Exception as exc:
            kind = self._kind(exc)
            if kind in passthrough or isinstance(exc, SessionStoreError):
                raise
            raise self._mapped(exc, kind, what, attempt) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _mapped(self, exc: Exception, kind: ErrorKind, what: str, attempt: int) -> Exception:
        detail = _redact(self._error_detail(exc))
        if kind is ErrorKind.TRANSIENT:
            return StoreUnavailableError(
                f"{what} failed after {attempt} attempt(s) ({detail}); the store is unavailable"
            )
        if kind is ErrorKind.ACCESS:
            return StoreAccessError(
                f"{what} was refused ({detail}): check the credentials and that"
                f" {self.location} exists"
            )
        if kind is ErrorKind.NOT_FOUND:  # a listing found no bucket/container
            return StoreAccessError(f"{what} failed ({detail}): {self.location} does not exist")
        return SessionStoreError(f"{what} failed ({detail})")

    def _conflict(self, op: str, key: str, why: str) -> ConflictError:
        return ConflictError(f"{self.provider} {op} {self._where(key)}: {why}")

    # ------------------------------------------------------------------ public API

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
        snapshot whose ``tick`` is lower than the stored one is refused.

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
        # Only a conditional write reads its write id back (_put_once, after a lost
        # response); a plain save does not send one: one metadata header less for the
        # SDK to build and sign on every save (benchmarks/NOTES.md).
        conditional = if_version is not None or if_absent or self.reject_stale
        metadata = {META_WRITE_ID: uuid.uuid4().hex} if conditional else {}
        if encoded.encoding:
            metadata[META_ENCODING] = encoded.encoding
        if not self.reject_stale:
            return await self._put_once(key, encoded.body, metadata, if_version, if_absent)
        tick = snapshot.get("tick")
        if type(tick) is not int:
            raise SnapshotEncodeError(
                f"reject_stale needs an integer 'tick' in the snapshot, got {tick!r}"
            )
        metadata[META_TICK] = str(tick)
        for _ in range(_STALE_LOOP_LIMIT):
            stored = await self._stored_tick(key)
            if stored is not None and stored[0] is not None and stored[0] > tick:
                raise StaleSnapshotError(
                    f"{self.provider} save {self._where(key)}: tick {tick} is older than"
                    f" the stored tick {stored[0]}"
                )
            if if_version is not None or if_absent:
                return await self._put_once(key, encoded.body, metadata, if_version, if_absent)
            try:
                if stored is None:
                    return await self._put_once(key, encoded.body, metadata, None, True)
                return await self._put_once(key, encoded.body, metadata, stored[1], False)
            except ConflictError:
                continue  # another writer landed between our HEAD and PUT: look again
        raise self._conflict("save", key, "too many concurrent writers (reject_stale loop)")

    async def _stored_tick(self, key: str) -> tuple[int | None, str] | None:
        """(tick, version) of the stored object, or None if absent.

        The tick comes from metadata (one HEAD); objects written without it (by another
        client) are read whole to find it.
        """
        info = await self._head_or_none(key)
        if info is None:
            return None
        raw = info.metadata.get(META_TICK)
        if raw is not None:
            try:
                return int(raw), info.version
            except ValueError:
                pass
        got = await self._get_or_none(key)
        if got is None:
            return None
        tick = self._codec.decode(got.body, self._where(key)).get("tick")
        return (tick if type(tick) is int else None), got.info.version

    async def _put_once(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        if_version: str | None,
        if_absent: bool,
    ) -> str:
        conditional = if_version is not None or if_absent

        retried = False

        async def attempt(n: int) -> str:
            nonlocal retried
            retried = n > 1
            try:
                return await self._put(
                    key,
                    body,
                    content_type=self._codec.content_type,
                    metadata=metadata,
                    if_version=if_version,
                    if_absent=if_absent,
                )
            except Exception as exc:
                kind = self._kind(exc)
                if conditional and kind in (ErrorKind.PRECONDITION, ErrorKind.NOT_FOUND):
                    # Did this very write land after all? An earlier attempt whose
                    # response was lost, or the HTTP client's own silent re-send on a
                    # dropped keep-alive connection (aiohttp does that for PUT), meets
                    # its own object here. One HEAD, on the conflict path only.
                    info = await self._head_raw(key)
                    if info is not None and info.metadata.get(META_WRITE_ID) == metadata.get(
                        META_WRITE_ID
                    ):
                        return info.version
                raise

        try:
            version = await self._call("save", key, attempt)
        except Exception as exc:
            kind = self._kind(exc)
            if kind is ErrorKind.PRECONDITION or (kind is ErrorKind.NOT_FOUND and if_version):
                why = "it already exists" if if_absent else f"it is not at version {if_version}"
                if retried:
                    why += (
                        " (an earlier attempt's response was lost; another writer's object"
                        " is there now)"
                    )
                raise self._conflict("save", key, why) from exc
            if kind is ErrorKind.NOT_FOUND:
                raise StoreAccessError(
                    f"{self.provider} save {self._where(key)}: {self.location} does not exist"
                ) from exc
            raise
        _log.debug("sessionstore: saved %s (%d bytes)", self._where(key), len(body))
        return version

    async def _head_raw(self, key: str) -> ObjectInfo | None:
        """One HEAD without retries (used inside an attempt); None if absent."""
        try:
            return await self._head(key)
        except Exception as exc:
            if self._kind(exc) is ErrorKind.NOT_FOUND:
                return None
            raise

    async def _head_or_none(self, key: str) -> ObjectInfo | None:
        try:
            return await self._call("head", key, lambda _: self._head(key))
        except Exception as exc:
            if self._kind(exc) is ErrorKind.NOT_FOUND:
                return None
            raise

    async def _get_or_none(self, key: str) -> StoredObject | None:
        try:
            return await self._call("load", key, lambda _: self._get(key))
        except Exception as exc:
            if self._kind(exc) is ErrorKind.NOT_FOUND:
                return None
            raise

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
        got = await self._get_or_none(key)
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

        async def attempt(n: int) -> None:
            try:
                await self._delete(key, if_version=if_version)
            except Exception as exc:
                kind = self._kind(exc)
                if kind is ErrorKind.NOT_FOUND:
                    return  # absent (or deleted by our own earlier attempt): done
                if kind is ErrorKind.PRECONDITION and await self._head_raw(key) is None:
                    return  # absent (some services answer 412 there), or our earlier attempt
                raise

        try:
            await self._call("delete", key, attempt)
        except Exception as exc:
            if self._kind(exc) is ErrorKind.PRECONDITION:
                raise self._conflict("delete", key, f"it is not at version {if_version}") from exc
            raise

    async def _pages(self, page_size: int) -> AsyncIterator[tuple[str, ListedObject]]:
        if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise StoreConfigError(f"page_size must be an int in 1..1000, not {page_size!r}")
        token: str | None = None
        while True:
            page = await self._call(
                "list",
                None,
                lambda _, current=token: self._list_page(  # type: ignore[misc]
                    self.prefix, page_size=page_size, token=current
                ),
                passthrough=(),
            )
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
            StoreConfigError: neither ``ttl`` nor the store's ``ttl`` is set.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        limit = ttl or self.ttl
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
        """Close the SDK client the store built (an injected client stays open)."""
        async with self._open_lock:
            if self._opened:
                self._opened = False
                await self._close()

    async def __aenter__(self) -> Self:
        await self._call("open", None, _opened)  # errors mapped like any operation
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


async def _opened(attempt: int) -> None:
    """Nothing to do once ``_call`` has opened the store."""


def _redact(text: str) -> str:
    """Blank out anything that looks like a signature, key or token in ``text``."""
    return _SECRET_PATTERNS.sub(r"\1***", text)

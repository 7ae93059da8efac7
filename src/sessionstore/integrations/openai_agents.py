"""OpenAI Agents SDK sessions on any sessionstore store: S3, GCS, Azure Blob, files, memory.

::

    from agents import Agent, Runner
    from sessionstore.integrations.openai_agents import ObjectStorageSession

    session = ObjectStorageSession.from_url("user-42", "s3://my-bucket/agent-sessions/")
    result = await Runner.run(Agent(name="helper"), "Hello", session=session)

:class:`ObjectStorageSession` implements the SDK's session interface
(``agents.memory.session.SessionABC``) with one snapshot per session in the store, at
the store's own key for ``session_id`` (docs/DESIGN.md, "OpenAI Agents SDK sessions")::

    {"format": "openai-agents-session", "formatVersion": 1, "sessionId": "user-42",
     "tick": 7, "items": [...the items, oldest first...]}

``tick`` counts the writes (so a ``reject_stale`` store accepts them). Reads cost one
request; every change is a read and a conditional write (``if_version``, or
``if_absent`` for a new session), repeated with jittered backoff when another writer
got there first, so overlapping turns of one session lose and duplicate nothing.
TTL, compression and the size limit are the store's options.

Importing this module imports the SDK (the ``openai-agents`` extra);
``import sessionstore`` does not.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from sessionstore.base import ObjectSessionStore
from sessionstore.errors import (
    ConflictError,
    InvalidSessionIdError,
    SnapshotDecodeError,
    StoreConfigError,
)
from sessionstore.retry import RetryPolicy
from sessionstore.url import open_store

try:
    from agents.items import TResponseInputItem
    from agents.memory.session import SessionABC
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "sessionstore.integrations.openai_agents needs the OpenAI Agents SDK:"
        " pip install 'sessionstore[openai-agents]'"
    ) from exc

__all__ = ["CONFLICT_RETRY", "FORMAT", "FORMAT_VERSION", "ObjectStorageSession"]

_log = logging.getLogger("sessionstore")
T = TypeVar("T")

#: The ``format`` field of a session snapshot, and the newest layout this code writes.
FORMAT = "openai-agents-session"
FORMAT_VERSION = 1

#: How often a change is tried again when another writer changed the session first:
#: full-jitter exponential waits from 10 ms up to 0.5 s, at most 50 attempts or 60 s.
CONFLICT_RETRY = RetryPolicy(attempts=50, base_delay=0.01, max_delay=0.5, deadline=60.0)

_shared: dict[tuple[str | None, str], ObjectSessionStore] = {}
_shared_lock = threading.Lock()


class ObjectStorageSession(SessionABC):
    """An OpenAI Agents SDK session kept as one snapshot in a sessionstore store.

    Pass it to ``Runner.run(..., session=...)`` like the SDK's own sessions. Behaves as
    they do: :meth:`get_items` returns the newest items oldest first (all of them, or the
    newest ``limit``, or ``session_settings.limit``), :meth:`pop_item` removes and returns
    the newest item, :meth:`clear_session` removes everything.

    Several sessions (and several processes) may share one store; sessions with the same
    ``session_id`` share one history, and concurrent changes to it are serialized by
    conditional writes.

    Args:
        session_id: the history's id; any id the store accepts (its key rules apply).
        store: where the history lives. The session never closes it.
        session_settings: the SDK's ``SessionSettings`` (or a mapping of its fields);
            its ``limit`` is the default of :meth:`get_items`.
        max_items: keep only the newest ``max_items`` items: older ones are dropped on
            each :meth:`add_items`. None (the default) keeps everything, up to the store's
            ``max_snapshot_bytes``.
        conflict_retry: how often and how long a change is retried while other writers
            win the race (default :data:`CONFLICT_RETRY`).

    Raises:
        InvalidSessionIdError: ``session_id`` is not a non-empty str.
        StoreConfigError: ``store``, ``max_items`` or ``conflict_retry`` is not valid.
        TypeError: ``session_settings`` has fields the SDK does not know.
    """

    def __init__(
        self,
        session_id: str,
        store: ObjectSessionStore,
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        max_items: int | None = None,
        conflict_retry: RetryPolicy | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidSessionIdError(f"session_id must be a non-empty str, not {session_id!r}")
        if not isinstance(store, ObjectSessionStore):
            raise StoreConfigError(
                f"store must be a sessionstore ObjectSessionStore, not {type(store).__name__}"
            )
        if max_items is not None and (type(max_items) is not int or max_items < 1):
            raise StoreConfigError(f"max_items must be an int >= 1 or None, not {max_items!r}")
        if conflict_retry is not None and not isinstance(conflict_retry, RetryPolicy):
            raise StoreConfigError(
                f"conflict_retry must be a RetryPolicy, not {type(conflict_retry).__name__}"
            )
        self.session_id = session_id
        self.store = store
        self.session_settings = _settings(session_settings)
        self.max_items = max_items
        self.conflict_retry = conflict_retry or CONFLICT_RETRY

    @classmethod
    def from_url(
        cls,
        session_id: str,
        url: str | None = None,
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        max_items: int | None = None,
        conflict_retry: RetryPolicy | None = None,
        **options: Any,
    ) -> ObjectStorageSession:
        """A session on the store ``open_store(url, **options)`` builds.

        Sessions made with the same URL and options share one store (one SDK client,
        one connection pool) in this process; :meth:`aclose_shared` closes them.

        Raises:
            StoreConfigError: what :func:`sessionstore.open_store` raises for the URL and
                options, and the errors of the constructor.
        """
        key = (url, repr(sorted(options.items())))
        with _shared_lock:
            store = _shared.get(key)
            if store is None:
                store = _shared[key] = open_store(url, **options)
        return cls(
            session_id,
            store,
            session_settings=session_settings,
            max_items=max_items,
            conflict_retry=conflict_retry,
        )

    @staticmethod
    async def aclose_shared() -> None:
        """Close every store :meth:`from_url` opened in this process, and forget them."""
        with _shared_lock:
            stores = list(_shared.values())
            _shared.clear()
        for store in stores:
            await store.aclose()

    # ------------------------------------------------------------------ the SDK's interface

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The newest ``limit`` items, oldest first; all of them if no limit applies.

        Without ``limit``, ``session_settings.limit`` applies, as in the SDK's sessions.
        A limit of 0 or less returns no items. One read request.

        Raises:
            SnapshotDecodeError: the stored object is not a session of this format.
            SnapshotTooLargeError, StoreAccessError, StoreUnavailableError,
            SessionStoreError: what the store's ``load`` raises.
        """
        limit = resolve_session_limit(limit, self.session_settings)
        items, _, _ = await self._read()
        if limit is None:
            return items
        return items[-limit:] if limit > 0 else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` after the newest ones, all or none.

        Two requests (a read and a conditional write) when no other writer intervenes;
        an empty list sends none. A cancelled call finishes its change (or fails)
        before the cancellation propagates, so the caller never leaves it half-known.

        Raises:
            SnapshotEncodeError: an item is not JSON (nothing written).
            SnapshotTooLargeError: the history would exceed the store's
                ``max_snapshot_bytes`` (nothing written; see ``max_items``).
            ConflictError: other writers kept winning for longer than ``conflict_retry``.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        new = list(items)
        if not new:
            return

        def append(stored: list[TResponseInputItem]) -> tuple[None, bool]:
            stored.extend(new)
            if self.max_items is not None:
                del stored[: -self.max_items]
            return None, True

        await _to_the_end(self._change("add_items", append))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item, or None if there is none.

        Two concurrent calls never return the same item. One read, plus a conditional
        write when there is an item to remove. A cancelled call finishes its change
        before the cancellation propagates, as in the SDK's sessions.

        Raises:
            ConflictError: other writers kept winning for longer than ``conflict_retry``.
            The errors of :meth:`get_items`.
        """
        return await _to_the_end(self._change("pop_item", _pop_newest))

    async def clear_session(self) -> None:
        """Remove every item: one delete request (finished even if the caller is cancelled).

        Raises:
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        await _to_the_end(self.store.delete(self.session_id))

    # ------------------------------------------------------------------ storage

    async def _read(self) -> tuple[list[TResponseInputItem], int, str | None]:
        """(items, tick, version) of the stored session; ([], 0, None) when absent."""
        versioned = await self.store.load_versioned(self.session_id)
        if versioned is None:
            return [], 0, None
        snapshot: Mapping[str, Any] = versioned.snapshot
        items, tick = snapshot.get("items"), snapshot.get("tick")
        version = snapshot.get("formatVersion")
        problem = None
        if snapshot.get("format") != FORMAT:
            problem = f"its format is {snapshot.get('format')!r}, not {FORMAT!r}"
        elif type(version) is not int or version < 1:
            problem = f"its formatVersion is {version!r}"
        elif version > FORMAT_VERSION:
            problem = (
                f"it was written in format version {version}; this sessionstore reads up to"
                f" {FORMAT_VERSION}: upgrade sessionstore"
            )
        elif not isinstance(items, list) or type(tick) is not int:
            problem = "its items or tick are missing"
        if problem is not None:
            raise SnapshotDecodeError(
                f"session {self.session_id!r} in {self.store!r} is not an OpenAI Agents"
                f" session this code can read: {problem}"
            )
        return cast(list[TResponseInputItem], items), cast(int, tick), versioned.version

    async def _change(
        self, op: str, change: Callable[[list[TResponseInputItem]], tuple[T, bool]]
    ) -> T:
        """Read, ``change`` the items in place, write back on the version read; repeat
        while another writer changed the session in between.

        ``change`` returns its result and whether it changed anything (if not, nothing
        is written).
        """

        async def once() -> T:
            items, tick, version = await self._read()
            result, changed = change(items)
            if not changed:
                return result
            snapshot = {
                "format": FORMAT,
                "formatVersion": FORMAT_VERSION,
                "sessionId": self.session_id,
                "tick": tick + 1,
                "items": items,
            }
            if version is None:
                await self.store.save(self.session_id, snapshot, if_absent=True)
            else:
                await self.store.save(self.session_id, snapshot, if_version=version)
            return result

        policy = self.conflict_retry
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline),
            wait=wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay),
            retry=retry_if_exception_type(ConflictError),
            before_sleep=lambda state: self._log_conflict(op, state),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await once()
        except RetryError as exc:
            last = exc.last_attempt
            raise ConflictError(
                f"{op} on session {self.session_id!r} in {self.store!r} gave up after"
                f" {last.attempt_number} attempts: other writers kept changing it"
                " (raise conflict_retry's attempts or deadline)"
            ) from last.exception()
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_conflict(self, op: str, state: RetryCallState) -> None:
        _log.debug(
            "sessionstore: %s on session %r met another writer (attempt %d); retrying",
            op,
            self.session_id,
            state.attempt_number,
        )

    def __repr__(self) -> str:
        return f"ObjectStorageSession({self.session_id!r}, {self.store!r})"


async def _to_the_end(change: Awaitable[T]) -> T:
    """Await ``change``; if the caller is cancelled meanwhile, let it finish, then
    propagate the cancellation (so a cancelled turn knows its write landed or not)."""
    task = asyncio.ensure_future(change)
    interrupted = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                interrupted = True
                continue
            if not task.cancelled():
                task.exception()  # its outcome is known; only the caller was cancelled
            raise
        except BaseException:
            if interrupted:
                raise asyncio.CancelledError from None
            raise
        if interrupted:
            raise asyncio.CancelledError
        return result


def _pop_newest(items: list[TResponseInputItem]) -> tuple[TResponseInputItem | None, bool]:
    return (items.pop(), True) if items else (None, False)


def _settings(value: SessionSettings | Mapping[str, Any] | None) -> SessionSettings:
    """The SDK's settings object for ``value``, coerced as the SDK's own sessions do."""
    if value is None:
        return SessionSettings()
    if not isinstance(value, SessionSettings | Mapping):
        raise StoreConfigError(
            f"session_settings must be a SessionSettings or a mapping, not {type(value).__name__}"
        )
    return coerce_session_settings(dict(value) if isinstance(value, Mapping) else value)

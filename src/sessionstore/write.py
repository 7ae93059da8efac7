"""The write path: ``save`` and ``delete``, each with one :class:`Condition`.

The public keywords (``if_version``, ``if_absent``) become one condition value at the
top; four strategies (docs/DESIGN.md, "The write path") carry it down to the one
primitive call that applies it:

1. unconditional: one PUT, no write id;
2. a version or absent condition: a conditional PUT that recognises its own earlier
   write (a lost response) by a write id in the metadata;
3. absent with a TTL: an expired object counts as absent, replaced on condition of the
   version it was seen expired at;
4. the stale guard (``reject_stale``): the stored tick is read first, and the version
   it was read at becomes the PUT's condition unless the caller gave one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sessionstore.calls import cause
from sessionstore.codec import Codec
from sessionstore.errors import (
    ConflictError,
    SnapshotEncodeError,
    StaleSnapshotError,
    StoreConfigError,
)
from sessionstore.lifecycle import ClientLifecycle
from sessionstore.provider import (
    ABSENT,
    META_ENCODING,
    META_TICK,
    META_WRITE_ID,
    UNCONDITIONAL,
    Condition,
    Fault,
    NotFound,
    PreconditionFailed,
)
from sessionstore.types import SessionSnapshot

__all__ = ["WritePath"]

_log = logging.getLogger("sessionstore")

_STALE_LOOP_LIMIT = 64


class WritePath(ClientLifecycle):
    """``save`` and ``delete`` and their strategies."""

    _codec: Codec
    reject_stale: bool

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
            StoreConfigError: both ``if_version`` and ``if_absent`` (nothing sent).
            InvalidSessionIdError: bad id (nothing sent).
            SnapshotEncodeError: not a JSON object, or not serializable (nothing sent).
            SnapshotTooLargeError: over ``max_snapshot_bytes`` (nothing sent).
            ConflictError: the condition failed; StaleSnapshotError for an older tick.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        if if_version is not None and if_absent:
            raise StoreConfigError("save() takes if_version or if_absent, not both")
        condition = ABSENT if if_absent else Condition(version=if_version)
        key = self._key(session_id)
        encoded = self._codec.encode(snapshot)
        metadata: dict[str, str] = {}
        if encoded.encoding:
            metadata[META_ENCODING] = encoded.encoding
        if not self.reject_stale:
            return await self._save_as(key, encoded.body, metadata, condition)
        tick = snapshot.get("tick")
        if type(tick) is not int:
            raise SnapshotEncodeError(
                f"reject_stale needs an integer 'tick' in the snapshot, got {tick!r}"
            )
        metadata[META_TICK] = str(tick)
        return await self._save_unless_stale(key, encoded.body, metadata, tick, condition)

    async def _save_as(
        self, key: str, body: bytes, metadata: Mapping[str, str], condition: Condition
    ) -> str:
        """Strategies 1 to 3, by the condition."""
        if condition.absent:
            return await self._save_if_absent(key, body, metadata)
        if condition.version is not None:
            return await self._save_if(key, body, metadata, condition)
        return await self._save_plain(key, body, metadata)

    async def _save_plain(self, key: str, body: bytes, metadata: Mapping[str, str]) -> str:
        """Strategy 1: one unconditional PUT, under the retry policy.

        It sends no write id: one metadata header less for the SDK to build and sign
        on every save (benchmarks/NOTES.md).
        """
        return await self._saving(
            key, body, lambda: self._write(key, body, metadata, UNCONDITIONAL), UNCONDITIONAL
        )

    async def _save_if(
        self, key: str, body: bytes, metadata: Mapping[str, str], condition: Condition
    ) -> str:
        """Strategy 2: a conditional PUT that recognises its own earlier write.

        The PUT carries a fresh write id. If the condition fails, one HEAD looks at the
        object: if it holds this write id, an earlier attempt whose response was lost
        (or the HTTP client's own silent re-send on a dropped keep-alive connection;
        aiohttp does that for PUT) landed, and that is success.
        """
        stamped = {**metadata, META_WRITE_ID: uuid.uuid4().hex}
        return await self._saving(
            key, body, lambda: self._write_or_own(key, body, stamped, condition), condition
        )

    async def _save_if_absent(self, key: str, body: bytes, metadata: Mapping[str, str]) -> str:
        """Strategy 3, ``if_absent``: an expired object counts as absent.

        It is replaced on condition of the version it was seen expired at, so a writer
        that refreshes it meanwhile keeps it (and this save is a conflict).
        """
        try:
            return await self._save_if(key, body, metadata, ABSENT)
        except ConflictError:
            if self.ttl is None:
                raise
            info = await self._head_or_none(key)
            if info is None:  # deleted meanwhile: absent after all
                return await self._save_if(key, body, metadata, ABSENT)
            if not self._expired(info.last_modified):
                raise
        try:
            return await self._save_if(key, body, metadata, Condition(version=info.version))
        except ConflictError as exc:
            raise self._conflict("save", key, str(ABSENT)) from exc

    async def _save_unless_stale(
        self, key: str, body: bytes, metadata: Mapping[str, str], tick: int, condition: Condition
    ) -> str:
        """Strategy 4 (``reject_stale``): refuse a tick older than the stored one.

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
            if condition != UNCONDITIONAL:
                return await self._save_as(key, body, metadata, condition)
            seen = ABSENT if stored is None else Condition(version=stored[1])
            try:
                return await self._save_if(key, body, metadata, seen)
            except ConflictError:
                continue  # another writer landed between our HEAD and PUT: look again
        raise self._conflict("save", key, "too many concurrent writers (reject_stale loop)")

    async def _write(
        self, key: str, body: bytes, metadata: Mapping[str, str], condition: Condition
    ) -> str:
        """One PUT through the provider's primitive."""
        return await self._translated(
            self._put(
                key,
                body,
                content_type=self._codec.content_type,
                metadata=metadata,
                condition=condition,
            )
        )

    async def _write_or_own(
        self, key: str, body: bytes, metadata: Mapping[str, str], condition: Condition
    ) -> str:
        """One conditional PUT; a failed condition that meets this write's id is success."""
        try:
            return await self._write(key, body, metadata, condition)
        except (PreconditionFailed, NotFound):
            info = await self._head_once(key)
            if info is not None and info.metadata.get(META_WRITE_ID) == metadata[META_WRITE_ID]:
                return info.version
            raise

    async def _saving(
        self, key: str, body: bytes, attempt: Callable[[], Awaitable[str]], condition: Condition
    ) -> str:
        """Run ``attempt`` under the retry policy; say what a failed condition means."""
        try:
            version = await self._call("save", key, attempt)
        except NotFound as fault:
            if not condition.version:
                raise self._missing_store("save", key) from cause(fault)
            raise self._failed_condition(key, fault, condition) from cause(fault)
        except PreconditionFailed as fault:
            raise self._failed_condition(key, fault, condition) from cause(fault)
        _log.debug("sessionstore: saved %s (%d bytes)", self._where(key), len(body))
        return version

    def _failed_condition(self, key: str, fault: Fault, condition: Condition) -> ConflictError:
        why = str(condition)
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
        got = await self._get_or_none(key)
        if got is None:
            return None
        tick = self._codec.decode(got.body, self._where(key)).get("tick")
        return (tick if type(tick) is int else None), got.info.version

    async def delete(self, session_id: str, *, if_version: str | None = None) -> None:
        """Delete the session; an absent session is not an error.

        With ``if_version``, delete only if the stored version is that one.

        Raises:
            InvalidSessionIdError: bad id (nothing sent).
            ConflictError: ``if_version`` did not match the stored version.
            StoreAccessError, StoreUnavailableError, SessionStoreError: the store failed.
        """
        key = self._key(session_id)
        condition = Condition(version=if_version)
        try:
            await self._call("delete", key, lambda: self._delete_once(key, condition))
        except PreconditionFailed as fault:
            raise self._conflict("delete", key, str(condition)) from cause(fault)

    async def _delete_once(self, key: str, condition: Condition) -> None:
        """One DELETE; an object already gone (or deleted by our earlier attempt) is done."""
        try:
            await self._translated(self._delete(key, condition=condition))
        except NotFound:
            return
        except PreconditionFailed:
            if await self._head_once(key) is None:
                return  # absent (some services answer 412 there), or our earlier attempt
            raise

"""MemorySessionStore: the reference store, in process memory (optional LRU bound)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Unpack

from sessionstore.base import ObjectSessionStore
from sessionstore.provider import (
    Capabilities,
    Condition,
    ListedObject,
    NotFound,
    ObjectInfo,
    Page,
    StoredObject,
    StoreOptions,
)
from sessionstore.urlparams import SESSIONS, UrlParams

__all__ = ["MemorySessionStore"]


@dataclass(frozen=True, slots=True)
class _Entry:
    body: bytes
    info: ObjectInfo


class MemorySessionStore(ObjectSessionStore):
    """Sessions in a dict of this process, stored serialized like every other store.

    With ``max_size``, the least recently saved or loaded session is evicted first
    (like agentick's in-memory store). Only a save or a load counts as a use: ``has()``
    (a HEAD), a listing and ``iter_info()`` look without touching the order, so an
    existence check or a purge scan does not keep a session alive. Version tokens are
    a counter.

    Raises:
        StoreConfigError: ``max_size`` is not an int in 1..10**9, or a base option is bad.
    """

    capabilities = Capabilities(client_follows_loop=False, shared_across_processes=False)

    provider = "memory"
    url_params: ClassVar[UrlParams] = {"max_size": SESSIONS}

    def __init__(
        self, *, max_size: int | None = None, prefix: str = "", **options: Unpack[StoreOptions]
    ) -> None:
        super().__init__(prefix=prefix, **options)
        if max_size is not None:
            SESSIONS.check("max_size", max_size)
        self.max_size = max_size
        self._objects: OrderedDict[str, _Entry] = OrderedDict()
        self._counter = itertools.count(1)

    @property
    def location(self) -> str:
        """``memory://``."""
        return "memory://"

    @property
    def place(self) -> str:
        """This store's own objects (stores sharing them share the place)."""
        return f"memory://{id(self._objects):x}/{self.prefix}"

    def _entry(self, key: str) -> _Entry:
        try:
            entry = self._objects[key]
        except KeyError:
            raise NotFound(key) from None
        self._objects.move_to_end(key)
        return entry

    async def _put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        condition: Condition,
    ) -> str:
        current = self._objects.get(key)
        condition.require(None if current is None else current.info.version)
        version = str(next(self._counter))
        info = ObjectInfo(version, datetime.now(UTC), dict(metadata), len(body))
        self._objects[key] = _Entry(body, info)
        self._objects.move_to_end(key)
        if self.max_size is not None:
            while len(self._objects) > self.max_size:
                self._objects.popitem(last=False)
        return version

    async def _get(self, key: str) -> StoredObject:
        entry = self._entry(key)
        self._check_stored_size(key, entry.info.size)
        return StoredObject(entry.body, entry.info)

    async def _head(self, key: str) -> ObjectInfo:
        entry = self._objects.get(key)
        if entry is None:
            raise NotFound(key)
        return entry.info

    async def _delete(self, key: str, *, condition: Condition) -> None:
        current = self._objects.get(key)
        if current is None:
            raise NotFound(key)
        condition.require(current.info.version)
        del self._objects[key]

    async def _list_page(self, prefix: str, *, page_size: int, token: str | None) -> Page:
        keys = sorted(
            k
            for k in self._objects
            if k.startswith(prefix) and "/" not in k[len(prefix) :] and (token is None or k > token)
        )
        chunk = keys[:page_size]
        infos = [self._objects[k].info for k in chunk]
        objects = [
            ListedObject(k, info.last_modified, info.version, info.size)
            for k, info in zip(chunk, infos, strict=True)
        ]
        return Page(objects, chunk[-1] if len(keys) > page_size else None)

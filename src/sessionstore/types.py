"""The agentick ``SessionStore`` protocol, the snapshot type and :class:`Versioned`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, Protocol, TypedDict, runtime_checkable

__all__ = ["SessionInfo", "SessionSnapshot", "SessionStore", "Versioned"]


class SessionSnapshot(TypedDict, total=False):
    """An agentick session snapshot: a JSON object.

    The fields below are agentick's; any other key is kept untouched by every store.
    """

    version: str
    sessionId: str
    tick: int
    timeline: list[Any]
    comState: dict[str, Any]
    dataCache: dict[str, Any]
    usage: NotRequired[dict[str, Any]]
    timestamp: int


@runtime_checkable
class SessionStore(Protocol):
    """The agentick ``SessionStore`` interface (``packages/core/src/app/types.ts``).

    ``list`` and ``has`` are optional in agentick; every store of this library has them.
    """

    async def save(self, session_id: str, snapshot: SessionSnapshot) -> Any:
        """Persist ``snapshot`` under ``session_id``."""
        ...

    async def load(self, session_id: str) -> SessionSnapshot | None:
        """Return the snapshot saved under ``session_id``, or ``None`` if absent."""
        ...

    async def delete(self, session_id: str) -> None:
        """Delete the session; deleting an absent session is not an error."""
        ...


@dataclass(frozen=True, slots=True)
class Versioned:
    """A snapshot together with the opaque version token of the object that holds it."""

    snapshot: SessionSnapshot
    version: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a listing says of one stored session, without reading it."""

    session_id: str
    size: int | None
    last_modified: datetime | None
    version: str | None

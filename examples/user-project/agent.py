"""A tiny agent: each turn loads its session, adds the user's message, saves it back.

It takes any ``SessionStore``, so its tests run it on each emulator of the local cloud
through the fixtures of the ``sessionstore`` pytest plugin (see ``test_agent.py``).
"""

from __future__ import annotations

from typing import Any

from sessionstore import ConflictError, ObjectSessionStore


async def take_turn(store: ObjectSessionStore, session_id: str, message: str) -> dict[str, Any]:
    """Append ``message`` to the session's history and save it, retrying on a conflict
    (another process took a turn at the same moment: no turn is ever lost)."""
    while True:
        loaded = await store.load_versioned(session_id)
        if loaded is None:
            session: dict[str, Any] = {"sessionId": session_id, "tick": 0, "history": []}
            version = None
        else:
            session, version = dict(loaded.snapshot), loaded.version
        session["tick"] += 1
        session["history"] = [*session["history"], message]
        try:
            if version is None:
                await store.save(session_id, session, if_absent=True)
            else:
                await store.save(session_id, session, if_version=version)
        except ConflictError:
            continue
        return session

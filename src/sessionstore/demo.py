"""The main job on the embedded default: save, list, load and delete a few sessions.

``python -m sessionstore demo [URL]`` runs it with the core install alone; with the
``cli`` extra it is also ``sessionstore demo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sessionstore.errors import SessionStoreError
from sessionstore.types import SessionSnapshot
from sessionstore.url import DEFAULT_URL, open_store

__all__ = ["demo_snapshot", "run_demo"]

DEMO_IDS = ("demo-alice", "demo-bob", "demo/with slash & ünïcode")


def demo_snapshot(session_id: str, tick: int) -> SessionSnapshot:
    """An agentick-shaped snapshot of ``session_id`` after ``tick`` user turns."""
    return {
        "version": "1.0",
        "sessionId": session_id,
        "tick": tick,
        "timeline": [
            {
                "kind": "message",
                "message": {
                    "role": "user",
                    "content": [{"type": "text", "text": f"turn {t} of {session_id}"}],
                },
            }
            for t in range(tick)
        ],
        "comState": {},
        "dataCache": {},
        "timestamp": int(time.time() * 1000),
    }


async def run_demo(url: str | None = None, echo: Callable[[str], None] = print) -> None:
    """Save, list, load and delete three sessions on ``url`` (default: ``open_store()``).

    Prints each step through ``echo``. Raises what the store raises
    (:class:`~sessionstore.errors.SessionStoreError` and its subclasses), and
    ``SessionStoreError`` itself if a session does not load back as saved.
    """
    async with open_store(url) as store:
        echo(f"store: {store!r}  (default: $SESSIONSTORE_URL or {DEFAULT_URL})")
        for tick, session_id in enumerate(DEMO_IDS, start=1):
            version = await store.save(session_id, demo_snapshot(session_id, tick))
            echo(f"saved   {session_id!r} tick={tick} version={version}")
        echo(f"listed  {[i for i in await store.list() if i in DEMO_IDS]}")
        for tick, session_id in enumerate(DEMO_IDS, start=1):
            snapshot = await store.load(session_id)
            if snapshot is None or snapshot.get("tick") != tick:
                raise SessionStoreError(f"{session_id!r} did not load back as saved")
            echo(
                f"loaded  {session_id!r} tick={snapshot['tick']}"
                f" messages={len(snapshot['timeline'])}"
            )
        for session_id in DEMO_IDS:
            await store.delete(session_id)
            echo(f"deleted {session_id!r}; has={await store.has(session_id)}")
    echo("demo ok")

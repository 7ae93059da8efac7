"""AWS Lambda handler, async variant: ``asyncio.run`` per invocation.

For code that is async already (an agent framework on asyncio). The store is built
once per container at import, outside any event loop; each invocation runs in a new
loop (``asyncio.run``), and the store follows it: it builds its SDK client for the
new loop and lets go of the previous one. The synchronous handler beside this one
(handler.py) keeps one client warm instead, and costs less per invocation
(BENCHMARKS.md).

Event: ``{"session_id": "...", "message": "..."}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent import reply_of, run_turn

import sessionstore

store = sessionstore.open_store()  # $SESSIONSTORE_URL: built once per container
MARGIN = 1.0


async def turn(session_id: str, text: str) -> dict[str, Any]:
    """Restore, run one turn, save over the version read; retry on a conflict."""
    for _ in range(5):
        current = await store.load_versioned(session_id)
        session = run_turn(current and current.snapshot, session_id, text)
        try:
            if current is None:
                await store.save(session_id, session, if_absent=True)
            else:
                await store.save(session_id, session, if_version=current.version)
        except sessionstore.ConflictError:
            continue
        return {"statusCode": 200, "tick": session["tick"], "reply": reply_of(session)}
    return {"statusCode": 409, "error": f"session {session_id!r} is busy"}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point: one event loop per invocation."""
    with sessionstore.deadline(context.get_remaining_time_in_millis() / 1000 - MARGIN):
        return asyncio.run(turn(event["session_id"], event["message"]))

"""The stand-in agent of the examples: one turn over an agentick-shaped session.

Deploy it beside the handler (the handlers import it as ``agent``), and replace
``run_turn`` with your agent (agentick, or anything that keeps its state in a
JSON object). It takes the restored snapshot (None for a new session) and the user's
message, and returns the snapshot to save: ``tick`` grows by one per turn, as
agentick's does, which is what ``reject_stale`` compares.
"""

from __future__ import annotations

import time
from typing import Any


def run_turn(previous: dict[str, Any] | None, session_id: str, text: str) -> dict[str, Any]:
    """One agent turn: append the user's message and a reply, advance the tick."""
    session = previous or {
        "version": "1.0",
        "sessionId": session_id,
        "tick": 0,
        "timeline": [],
        "comState": {},
        "dataCache": {},
    }
    tick = session["tick"] + 1
    reply = f"turn {tick}: you said {text!r}"
    timeline = [
        *session["timeline"],
        {
            "kind": "message",
            "message": {"role": "user", "content": [{"type": "text", "text": text}]},
        },
        {
            "kind": "message",
            "message": {"role": "assistant", "content": [{"type": "text", "text": reply}]},
        },
    ]
    return {**session, "tick": tick, "timeline": timeline, "timestamp": int(time.time() * 1000)}


def reply_of(session: dict[str, Any]) -> str:
    """The text of the session's last message."""
    return str(session["timeline"][-1]["message"]["content"][0]["text"])

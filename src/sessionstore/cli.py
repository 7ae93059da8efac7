"""The ``sessionstore`` command (``python -m sessionstore``).

``demo`` saves, lists, loads and deletes a few agentick-shaped sessions on the
embedded default store and prints what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from sessionstore.types import SessionSnapshot
from sessionstore.url import DEFAULT_URL, open_store

__all__ = ["main"]


def _snapshot(session_id: str, tick: int) -> SessionSnapshot:
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


async def _demo(url: str | None) -> None:
    async with open_store(url) as store:
        print(f"store: {store!r}")
        ids = ["demo-alice", "demo-bob", "demo/with slash & ünïcode"]
        for tick, session_id in enumerate(ids, start=1):
            version = await store.save(session_id, _snapshot(session_id, tick))
            print(f"saved   {session_id!r} tick={tick} version={version}")
        listed = [i for i in await store.list() if i in ids]
        print(f"listed  {listed}")
        for session_id in ids:
            snapshot = await store.load(session_id)
            assert snapshot is not None
            print(
                f"loaded  {session_id!r} tick={snapshot['tick']}"
                f" messages={len(snapshot['timeline'])}"
            )
        for session_id in ids:
            await store.delete(session_id)
            print(f"deleted {session_id!r}; has={await store.has(session_id)}")
    print("demo ok")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="sessionstore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="save, list, load and delete a few sessions")
    demo.add_argument(
        "url",
        nargs="?",
        default=None,
        help=f"store URL (default: $SESSIONSTORE_URL or {DEFAULT_URL})",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        asyncio.run(_demo(args.url))
    return 0

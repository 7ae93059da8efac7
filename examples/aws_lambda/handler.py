"""AWS Lambda handler (Python's default, synchronous): one agent turn per invocation.

Deploy with ``sessionstore[s3]`` in the package and ``SESSIONSTORE_URL`` set, e.g.
``s3://my-bucket/sessions/``. The store is built once per container, at import: its
boto client, connections and private event loop thread stay warm between the
invocations a container serves. Nothing needs closing when the container is frozen
or reclaimed.

Event: ``{"session_id": "...", "message": "..."}``.
"""

from __future__ import annotations

from typing import Any

from agent import reply_of, run_turn

import sessionstore

store = sessionstore.open_store_sync()  # $SESSIONSTORE_URL: built once per container
#: Seconds kept back from the invocation's budget to answer after a store failure.
MARGIN = 1.0


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Restore the session, run one turn, save it only over the version it read."""
    session_id, text = event["session_id"], event["message"]
    # Retries of the store never outlive the invocation: StoreUnavailableError comes
    # back in time instead of Lambda killing the function mid-write.
    with sessionstore.deadline(context.get_remaining_time_in_millis() / 1000 - MARGIN):
        for _ in range(5):  # another invocation of this session may save in between
            current = store.load_versioned(session_id)
            session = run_turn(current and current.snapshot, session_id, text)
            try:
                if current is None:
                    store.save(session_id, session, if_absent=True)
                else:
                    store.save(session_id, session, if_version=current.version)
            except sessionstore.ConflictError:
                continue  # it did: run the turn again on top of its snapshot
            return {"statusCode": 200, "tick": session["tick"], "reply": reply_of(session)}
    return {"statusCode": 409, "error": f"session {session_id!r} is busy"}

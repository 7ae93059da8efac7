"""Google Cloud Functions (functions-framework) HTTP handler: one agent turn per request.

Deploy with ``sessionstore[gcs]`` and ``functions-framework`` in requirements.txt and
``SESSIONSTORE_URL=gs://my-bucket/sessions/?reject_stale=true``; the entry point is
``agent_turn``. The store is built once per instance, at import, and kept warm between
requests; Cloud Functions may serve several requests of one instance at once on
threads, which one SyncSessionStore allows.

This one guards with ``reject_stale``: a save whose tick is older than the stored
one (a slower request of the same session) is refused with StaleSnapshotError.

Request: ``POST {"session_id": "...", "message": "..."}``.
"""

from __future__ import annotations

import os
from typing import Any

import functions_framework
from agent import reply_of, run_turn
from flask import Request

import sessionstore

store = sessionstore.open_store_sync()  # $SESSIONSTORE_URL, with reject_stale=true
#: The store calls of one request stop well inside the function's timeout.
BUDGET = float(os.environ.get("SESSION_BUDGET_SECONDS", "50"))


@functions_framework.http
def agent_turn(request: Request) -> tuple[dict[str, Any], int]:
    """Restore the session, run one turn, save it unless a newer tick is stored."""
    body = request.get_json(silent=True) or {}
    session_id, text = body.get("session_id"), body.get("message")
    if not isinstance(session_id, str) or not isinstance(text, str):
        return {"error": "send JSON with string fields session_id and message"}, 400
    try:
        with sessionstore.deadline(BUDGET):
            session = run_turn(store.load(session_id), session_id, text)
            store.save(session_id, session)
    except sessionstore.StaleSnapshotError:
        return {"error": f"a newer turn of {session_id!r} was saved first"}, 409
    except sessionstore.InvalidSessionIdError as exc:
        return {"error": str(exc)}, 400
    except sessionstore.StoreUnavailableError:
        return {"error": "the session store is unavailable; try again"}, 503
    return {"tick": session["tick"], "reply": reply_of(session)}, 200

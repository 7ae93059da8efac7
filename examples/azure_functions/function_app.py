"""Azure Functions (Python v2 programming model) HTTP function: one agent turn per request.

Deploy with ``sessionstore[azure]`` and ``azure-functions`` in requirements.txt, and
the app settings ``SESSIONSTORE_URL=az://my-container/sessions/`` and
``AZURE_STORAGE_CONNECTION_STRING`` (or ``?account_url=`` with a managed identity,
extra ``azure-identity``). The store is built once per worker process, at import, and
kept warm between invocations.

Request: ``POST /api/turn`` with ``{"session_id": "...", "message": "..."}``.
"""

from __future__ import annotations

import json
import os

import azure.functions as func
from agent import reply_of, run_turn

import sessionstore

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
store = sessionstore.open_store_sync()  # $SESSIONSTORE_URL: built once per worker
#: The store calls of one invocation stop well inside host.json's functionTimeout.
BUDGET = float(os.environ.get("SESSION_BUDGET_SECONDS", "50"))


def _json(body: object, status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.route(route="turn", methods=["POST"])
def agent_turn(req: func.HttpRequest) -> func.HttpResponse:
    """Restore the session, run one turn, save it only over the version it read."""
    try:
        body = req.get_json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not all(
        isinstance(body.get(k), str) for k in ("session_id", "message")
    ):
        return _json({"error": "send JSON with string fields session_id and message"}, 400)
    session_id, text = body["session_id"], body["message"]
    try:
        with sessionstore.deadline(BUDGET):
            for _ in range(5):  # another invocation of this session may save in between
                current = store.load_versioned(session_id)
                session = run_turn(current and current.snapshot, session_id, text)
                try:
                    if current is None:
                        store.save(session_id, session, if_absent=True)
                    else:
                        store.save(session_id, session, if_version=current.version)
                except sessionstore.ConflictError:
                    continue
                return _json({"tick": session["tick"], "reply": reply_of(session)}, 200)
    except sessionstore.StoreUnavailableError:
        return _json({"error": "the session store is unavailable; try again"}, 503)
    return _json({"error": f"session {session_id!r} is busy"}, 409)

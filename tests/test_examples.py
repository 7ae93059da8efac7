"""The handler examples of examples/, called the way their runtimes call them.

Each test imports its example once (its store is built at import, as in a container)
and calls the handler many times, against the local cloud: a plain call with an event
and a context object for Lambda, functions-framework's test client for Cloud
Functions, ``azure.functions.HttpRequest`` objects for Azure Functions.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import functions_framework
import pytest

from sessionstore import SyncSessionStore
from sessionstore.testing import Emulator
from tests.contract import MakeStore, cloud_url

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class LambdaContext:
    """The context object Lambda passes to a Python handler (the fields used here)."""

    def __init__(self, budget_ms: int = 30_000) -> None:
        self.aws_request_id = uuid.uuid4().hex
        self.function_name = "agent"
        self._ends = time.monotonic() + budget_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self._ends - time.monotonic()) * 1000)


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], ModuleType]]:
    """Import an example as its runtime does: once, with SESSIONSTORE_URL set."""
    monkeypatch.setattr(sys, "path", [str(EXAMPLES), *sys.path])  # `import agent`
    loaded: list[ModuleType] = []

    def deploy(relative: str, url: str) -> ModuleType:
        monkeypatch.setenv("SESSIONSTORE_URL", url)
        path = EXAMPLES / relative
        spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded.append(module)
        return module

    yield deploy
    for module in loaded:
        if isinstance(module.store, SyncSessionStore):
            module.store.close()
        else:
            asyncio.run(module.store.aclose())


def cloud(
    provider: str, emulator: Emulator, prefix: str, monkeypatch: pytest.MonkeyPatch, query: str = ""
) -> str:
    """The example's SESSIONSTORE_URL; its credentials go in the environment."""
    url, env = cloud_url(provider, emulator, prefix)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return url + (("&" if "?" in url else "?") + query if query else "")


def invoke_lambda(handler: Callable[..., dict[str, Any]], session_id: str, text: str) -> Any:
    return handler({"session_id": session_id, "message": text}, LambdaContext())


@pytest.fixture
def lambda_on_s3(
    deployed: Callable[[str, str], ModuleType],
    localstack_s3: Emulator,
    make_s3_store: MakeStore,
    unique_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], ModuleType]:
    """Deploy a Lambda example (``aws_lambda/<name>``) against LocalStack."""
    url = cloud("s3", localstack_s3, unique_prefix, monkeypatch)
    return lambda name: deployed(f"aws_lambda/{name}", url)


def test_lambda_handler_over_many_invocations(
    lambda_on_s3: Callable[[str], ModuleType],
) -> None:
    example = lambda_on_s3("handler.py")
    clients = set()
    for i in range(1, 31):
        result = invoke_lambda(example.handler, f"s{i % 3}", f"hello {i}")
        assert result["statusCode"] == 200 and result["tick"] == (i + 2) // 3
        assert result["reply"] == f"turn {result['tick']}: you said 'hello {i}'"
        clients.add(id(example.store.store.client))
    assert len(clients) == 1  # one warm client for every invocation

    # Invocations of one session that overlap (several containers, here threads):
    # every one that answers 200 is one tick, none is lost.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: invoke_lambda(example.handler, "s0", f"t{i}"), range(12)))
    ok = sum(r["statusCode"] == 200 for r in results)
    assert ok >= 1 and all(r["statusCode"] in (200, 409) for r in results)
    saved = example.store.load("s0")
    assert saved is not None and saved["tick"] == 10 + ok
    assert len(saved["timeline"]) == 2 * saved["tick"]


def test_async_lambda_handler_runs_a_new_event_loop_per_invocation(
    lambda_on_s3: Callable[[str], ModuleType],
) -> None:
    example = lambda_on_s3("handler_async.py")
    for i in range(1, 31):
        result = invoke_lambda(example.handler, f"s{i % 3}", f"hello {i}")
        assert result["statusCode"] == 200 and result["tick"] == (i + 2) // 3
    assert asyncio.run(example.store.list()) == ["s0", "s1", "s2"]


def test_lambda_deadline_comes_back_in_time(
    lambda_on_s3: Callable[[str], ModuleType],
) -> None:
    example = lambda_on_s3("handler.py")
    from sessionstore import StoreUnavailableError

    with pytest.raises(StoreUnavailableError, match="deadline"):
        # Less left than the handler's margin: no store call is even started.
        example.handler({"session_id": "s", "message": "m"}, LambdaContext(budget_ms=500))
    assert example.store.load("s") is None


@pytest.fixture
def gcf_client(
    deployed: Callable[[str, str], ModuleType],
    fake_gcs: Emulator,
    make_gcs_store: MakeStore,
    unique_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    url = cloud("gcs", fake_gcs, unique_prefix, monkeypatch, "reject_stale=true")
    monkeypatch.setenv("SESSIONSTORE_URL", url)
    monkeypatch.setattr(sys, "path", [str(EXAMPLES), *sys.path])
    app = functions_framework.create_app("agent_turn", str(EXAMPLES / "gcp_functions/main.py"))
    module = sys.modules.pop("main")  # where create_app put it
    try:
        yield app.test_client(), module
    finally:
        module.store.close()


def test_cloud_function_over_many_requests(gcf_client: Any) -> None:
    client, module = gcf_client
    for i in range(1, 31):
        response = client.post("/", json={"session_id": f"s{i % 3}", "message": f"hi {i}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["tick"] == (i + 2) // 3
    assert module.store.store.reject_stale
    bad = client.post("/", data="not json", content_type="text/plain")
    assert bad.status_code == 400 and "session_id" in bad.get_json()["error"]
    empty = client.post("/", json={"session_id": "", "message": "x"})
    assert empty.status_code == 400 and "session id" in empty.get_json()["error"]


def test_cloud_function_refuses_a_stale_turn(
    gcf_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, module = gcf_client
    for i in range(3):
        assert client.post("/", json={"session_id": "s", "message": f"m{i}"}).status_code == 200
    agent_turn = module.run_turn

    def slow_turn(previous: Any, session_id: str, text: str) -> Any:
        # While this request's agent runs, two more turns of the session land.
        newer = dict(previous, tick=previous["tick"] + 2)
        module.store.save(session_id, newer)
        return agent_turn(previous, session_id, text)

    monkeypatch.setattr(module, "run_turn", slow_turn)
    stale = client.post("/", json={"session_id": "s", "message": "late"})
    assert stale.status_code == 409 and "newer turn" in stale.get_json()["error"]
    saved = module.store.load("s")
    assert saved is not None and saved["tick"] == 5  # the newer turns, not the late one


def azure_request(body: Any) -> func.HttpRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/turn",
        headers={"Content-Type": "application/json"},
        params={},
        body=data,
    )


def test_azure_function_over_many_invocations(
    deployed: Callable[[str, str], ModuleType],
    azurite: Emulator,
    make_azure_store: MakeStore,
    unique_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = cloud("azure", azurite, unique_prefix, monkeypatch)
    example = deployed("azure_functions/function_app.py", url)
    function = example.agent_turn.build().get_user_function()
    for i in range(1, 31):
        response = function(azure_request({"session_id": f"s{i % 3}", "message": f"hi {i}"}))
        assert response.status_code == 200, response.get_body()
        assert json.loads(response.get_body())["tick"] == (i + 2) // 3
    assert function(azure_request(b"{not json")).status_code == 400
    assert function(azure_request({"session_id": 3, "message": "x"})).status_code == 400
    saved = example.store.load("s1")
    assert saved is not None and saved["tick"] == 10 and len(saved["timeline"]) == 20

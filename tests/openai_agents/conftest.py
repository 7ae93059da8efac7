"""Fixtures of the OpenAI Agents SDK tests: one store per backend, a scripted model.

Every test that takes ``make_store`` runs on the memory store, the file store and the
three emulated clouds (LocalStack, fake-gcs-server, Azurite; their fixtures come from
``sessionstore.testing``).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from agents import Agent, Runner, set_tracing_disabled
from agents.items import ModelResponse, TResponseInputItem
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseOutputMessage,
    ResponseOutputText,
)

from sessionstore import FileSessionStore, MemorySessionStore, ObjectSessionStore
from sessionstore.integrations.openai_agents import ObjectStorageSession
from sessionstore.testing import Emulator

MakeStore = Callable[..., ObjectSessionStore]
set_tracing_disabled(True)  # no trace export attempts (no network, no API key)
BACKENDS = ["memory", "file", "s3", "gcs", "azure"]
CLOUDS = ["s3", "gcs", "azure"]
_EMULATOR_FIXTURE = {"s3": "localstack_s3", "gcs": "fake_gcs", "azure": "azurite"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test runs once per store: memory, file and the three emulated clouds."""
    return str(request.param)


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """``make_store(**options)``: stores of the test's backend that share one place.

    The cloud factories of ``sessionstore.testing`` close their stores and empty the
    test's prefix afterwards; memory and file stores hold no client to close.
    """
    if backend in CLOUDS:
        return request.getfixturevalue(f"make_{backend}_store")  # type: ignore[no-any-return]
    first = MemorySessionStore()

    def make(**options: Any) -> ObjectSessionStore:
        if backend == "file":
            return FileSessionStore(tmp_path / "sessions", prefix="p/", **options)
        memory = MemorySessionStore(**options)
        memory._objects, memory._counter = first._objects, first._counter
        return memory

    return make


@pytest.fixture
def store(make_store: MakeStore) -> ObjectSessionStore:
    """A store with default options on the test's backend."""
    return make_store()


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the place ``make_store`` uses, for another process (not for memory)."""
    if backend == "memory":
        raise AssertionError("a memory store cannot be reached from another process")
    if backend == "file":
        return f"file://{quote(str(tmp_path / 'sessions'))}?prefix=p/"
    emulator: Emulator = request.getfixturevalue(_EMULATOR_FIXTURE[backend])
    prefix = request.getfixturevalue("unique_prefix")
    scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[backend]
    query = {
        "s3": f"?endpoint_url={quote(emulator.endpoint)}&region=us-east-1",
        "gcs": "?project=test",
        "azure": "",
    }[backend]
    return f"{scheme}://{emulator.bucket}/{prefix}{query}"


@pytest.fixture
def child_env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment a child process needs to reach the test's backend."""
    env = dict(os.environ)
    if backend in CLOUDS:
        emulator: Emulator = request.getfixturevalue(_EMULATOR_FIXTURE[backend])
        if backend == "s3":
            env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        elif backend == "gcs":
            env["STORAGE_EMULATOR_HOST"] = emulator.endpoint
        else:
            env["AZURE_STORAGE_CONNECTION_STRING"] = emulator.options["connection_string"]
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


def run_child(code: str, env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout, fail with its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# ---------------------------------------------------------------------- a scripted model

_ids = itertools.count(1)


def text_message(text: str) -> ResponseOutputMessage:
    """An assistant message as the Responses API returns it."""
    return ResponseOutputMessage(
        id=f"msg_{next(_ids)}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


class ScriptedReplies(Model):
    """A model that answers with the texts queued by :meth:`say`, one per call.

    No network and no API key: the SDK's Runner drives it like any model. ``inputs``
    records what the Runner sent on every call (history included).
    """

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.inputs: list[list[TResponseInputItem]] = []

    def say(self, text: str) -> None:
        """Queue the text of the next reply."""
        self.replies.append(text)

    def _next(self, input: str | list[TResponseInputItem]) -> ResponseOutputMessage:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        self.inputs.append(copy.deepcopy(items))  # type: ignore[arg-type]
        if not self.replies:
            raise AssertionError("the model was called more often than scripted")
        return text_message(self.replies.pop(0))

    async def get_response(  # type: ignore[override]
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        return ModelResponse(output=[self._next(input)], usage=Usage(), response_id=None)

    async def stream_response(  # type: ignore[override]
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        response = Response(
            id=f"resp_{next(_ids)}",
            created_at=time.time(),
            model="scripted",
            object="response",
            output=[self._next(input)],
            parallel_tool_calls=False,
            tool_choice="auto",
            tools=[],
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )


def _run_sync_in_thread(
    agent: Agent[Any], input: Any, session: ObjectStorageSession | None, kwargs: dict[str, Any]
) -> Any:
    """Runner.run_sync on this thread's own event loop, with its own store.

    A store's SDK client belongs to the loop that opened it, so the sync run gets a
    second store on the same place (``session.store`` must be fresh for this loop).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, input, session=session, **kwargs)
    finally:
        if session is not None:
            loop.run_until_complete(session.store.aclose())
        loop.close()
        asyncio.set_event_loop(None)


async def run_agent(
    runner_method: str,
    agent: Agent[Any],
    input: Any,
    *,
    session: ObjectStorageSession | None = None,
    make_store: MakeStore | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``agent`` once with ``Runner.run``, ``run_sync`` or ``run_streamed``."""
    if runner_method == "run":
        return await Runner.run(agent, input, session=session, **kwargs)
    if runner_method == "run_sync":
        if session is not None:
            assert make_store is not None, "run_sync needs make_store for its own store"
            session = ObjectStorageSession(
                session.session_id,
                make_store(),
                session_settings=session.session_settings,
                max_items=session.max_items,
            )
        return await asyncio.to_thread(_run_sync_in_thread, agent, input, session, kwargs)
    if runner_method == "run_streamed":
        result = Runner.run_streamed(agent, input, session=session, **kwargs)
        async for _event in result.stream_events():
            pass
        return result
    raise ValueError(f"unknown runner method {runner_method!r}")

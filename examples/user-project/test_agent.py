"""The agent's tests, on every emulator of the local cloud.

The fixtures come from the ``sessionstore`` pytest plugin (installed with the package):
each ``*_store`` is a store on its emulator with a unique prefix, emptied after the
test. Run with ``pytest --sessionstore-localcloud=require``: the plugin starts the
emulators these tests need and stops them at the end.
"""

from __future__ import annotations

import asyncio

import pytest

from agent import take_turn
from sessionstore import ObjectSessionStore

STORES = ["s3_store", "moto_s3_store", "gcs_store", "azure_store"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> ObjectSessionStore:
    """The agent's store, once on each emulator."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


async def test_turns_are_kept(store: ObjectSessionStore) -> None:
    await take_turn(store, "chat-1", "hello")
    session = await take_turn(store, "chat-1", "how are you?")
    assert session["tick"] == 2
    assert await store.load("chat-1") == session


async def test_concurrent_turns_lose_nothing(store: ObjectSessionStore) -> None:
    messages = [f"message {i}" for i in range(6)]
    await asyncio.gather(*(take_turn(store, "chat-2", m) for m in messages))
    session = await store.load("chat-2")
    assert session is not None and sorted(session["history"]) == messages

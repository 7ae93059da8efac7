"""The OpenAI Agents SDK's own session behaviour tests, run against ObjectStorageSession.

Ported (rewritten, not copied) from openai/openai-agents-python, commit 7f7a44f8d
(0.22.0): ``tests/memory/test_session.py`` (SQLiteSession), ``tests/memory/
test_session_limit.py``, ``tests/extensions/memory/test_redis_session.py``,
``test_sqlalchemy_session.py`` and ``test_async_sqlite_session.py``. Every case runs on
the memory store, the file store, LocalStack S3, fake-gcs-server and Azurite; the
Runner cases run through ``Runner.run``, ``run_sync`` and ``run_streamed`` as there.

Cases that apply (each named after its origin): direct operations, ordering, unicode
and special characters, limits (explicit, 0, larger than history, session_settings,
explicit over settings, RunConfig override), pop (empty, order, per session), clear,
empty add, isolation of sessions, list input appended, ``session_input_callback``
(prepared input, repeated history does not grow the session), the session limit through
the Runner, an add_items failure propagating out of ``run_streamed``, concurrent adds,
concurrent pops returning each item once, and cancellation waiting for a mutation's
outcome.

Cases that do not apply, and why:

- corrupt rows skipped by get_items/pop_item (SQLite, SQLAlchemy, Redis): history is one
  snapshot written whole, never row by row; a snapshot that does not decode is a
  ``SnapshotDecodeError`` (tested in test_session_storage.py), never partly read.
- closing (close(), closed sessions refuse calls, worker-thread connections, shared file
  locks, idempotent close, cleanup retries): the session owns no connection; the store
  is the caller's and is closed by ``store.aclose()`` (``from_url`` stores by
  ``aclose_shared``).
- rollback and write-lock release after a failed write, connection eviction and
  quarantine, Redis pipelines, WATCH retries, pool checkout: SQL and Redis machinery.
  Here a failed write writes nothing (tested: an unserializable item leaves the history
  as it was).
- Redis TTL in the write transaction, key prefixes, decode_responses, ping, from_url of
  a Redis URL, engines: backend specifics; the store's own options (ttl, prefix,
  compression) are tested in test_session_storage.py.
- ``session_input_callback`` / ``SessionSettings`` unit tests that never touch the
  session's storage (``SessionSettings.resolve``, unknown settings fields rejected by the
  SDK's own coercion) and ``session=None`` runs: they test the SDK, not a session.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from agents import Agent, RunConfig
from agents.items import TResponseInputItem
from agents.memory import SessionSettings

from sessionstore import ObjectSessionStore
from sessionstore.integrations.openai_agents import ObjectStorageSession
from tests.openai_agents.conftest import MakeStore, ScriptedReplies, run_agent

RUNNERS = ["run", "run_sync", "run_streamed"]


def messages(*contents: str) -> list[TResponseInputItem]:
    """User and assistant messages, alternating, with these contents."""
    roles = ("user", "assistant")
    return cast(
        list[TResponseInputItem],
        [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)],
    )


def contents(items: list[TResponseInputItem]) -> list[Any]:
    return [cast(dict[str, Any], item).get("content") for item in items]


def text_of(item: TResponseInputItem) -> str:
    content = cast(dict[str, Any], item)["content"]
    return content if isinstance(content, str) else str(content[0]["text"])


# ---------------------------------------------------------------- direct operations


async def test_direct_add_get_clear(store: ObjectSessionStore) -> None:
    """test_sqlite_session_memory_direct, test_redis_session_direct_ops."""
    session = ObjectStorageSession("direct_test", store)
    await session.add_items(messages("Hello", "Hi there!"))
    retrieved = await session.get_items()
    assert [i.get("role") for i in retrieved] == ["user", "assistant"]  # type: ignore[union-attr]
    assert contents(retrieved) == ["Hello", "Hi there!"]
    await session.clear_session()
    assert await session.get_items() == []


async def test_pop_item(store: ObjectSessionStore) -> None:
    """test_sqlite_session_memory_pop_item."""
    session = ObjectStorageSession("pop_test", store)
    assert await session.pop_item() is None
    await session.add_items(messages("Hello", "Hi there!", "How are you?"))
    assert len(await session.get_items()) == 3
    popped = await session.pop_item()
    assert popped == {"role": "user", "content": "How are you?"}
    assert contents(await session.get_items()) == ["Hello", "Hi there!"]
    assert await session.pop_item() == {"role": "assistant", "content": "Hi there!"}
    assert await session.pop_item() == {"role": "user", "content": "Hello"}
    assert await session.pop_item() is None
    assert await session.get_items() == []


async def test_pop_from_empty_session(store: ObjectSessionStore) -> None:
    """test_pop_from_empty_session (Redis, SQLAlchemy, async SQLite)."""
    session = ObjectStorageSession("empty_session", store)
    await session.clear_session()
    assert await session.pop_item() is None


async def test_pop_only_affects_its_session(store: ObjectSessionStore) -> None:
    """test_session_memory_pop_different_sessions."""
    one = ObjectStorageSession("session_1", store)
    two = ObjectStorageSession("session_2", store)
    await one.add_items(messages("Session 1 message"))
    await two.add_items(
        cast(
            list[TResponseInputItem],
            [
                {"role": "user", "content": "Session 2 message 1"},
                {"role": "user", "content": "Session 2 message 2"},
            ],
        )
    )
    popped = await two.pop_item()
    assert popped is not None and text_of(popped) == "Session 2 message 2"
    assert contents(await one.get_items()) == ["Session 1 message"]
    assert contents(await two.get_items()) == ["Session 2 message 1"]


async def test_get_items_with_limit(store: ObjectSessionStore) -> None:
    """test_sqlite_session_get_items_with_limit, test_get_items_with_limit (Redis)."""
    session = ObjectStorageSession("count_test", store)
    await session.add_items(
        messages("Message 1", "Response 1", "Message 2", "Response 2", "Message 3", "Response 3")
    )
    assert contents(await session.get_items()) == [
        "Message 1",
        "Response 1",
        "Message 2",
        "Response 2",
        "Message 3",
        "Response 3",
    ]
    assert contents(await session.get_items(limit=2)) == ["Message 3", "Response 3"]
    assert contents(await session.get_items(limit=4)) == [
        "Message 2",
        "Response 2",
        "Message 3",
        "Response 3",
    ]
    assert len(await session.get_items(limit=10)) == 6
    assert await session.get_items(limit=0) == []


async def test_get_items_limit_returns_fewer_when_history_exhausted(
    store: ObjectSessionStore,
) -> None:
    """test_get_items_limit_returns_fewer_when_history_exhausted (Redis, SQLAlchemy)."""
    session = ObjectStorageSession("short", store)
    await session.add_items(messages("only one"))
    assert contents(await session.get_items(limit=5)) == ["only one"]


async def test_add_empty_items_list(store: ObjectSessionStore) -> None:
    """test_add_empty_items_list (Redis, SQLAlchemy, async SQLite)."""
    session = ObjectStorageSession("empty_add", store)
    await session.add_items([])
    assert await session.get_items() == []
    assert await store.has("empty_add") is False  # nothing was written


async def test_unicode_content(store: ObjectSessionStore) -> None:
    """test_sqlite_session_unicode_content."""
    session = ObjectStorageSession("unicode_test", store)
    await session.add_items(messages("こんにちは", "😊👍", "Привет"))
    assert contents(await session.get_items()) == ["こんにちは", "😊👍", "Привет"]


async def test_special_characters_and_injection(store: ObjectSessionStore) -> None:
    """test_sqlite_session_special_characters_and_sql_injection,
    test_special_characters_and_json_safety, test_data_integrity_with_problematic_strings."""
    texts = [
        "O'Reilly",
        "DROP TABLE sessions;",
        '"SELECT * FROM users WHERE name = "admin";"',
        "Robert'); DROP TABLE students;--",
        '{"role": "assistant", "content": "not an item"}',
        "\x00nul\nnew line\ttab\\backslash \u2028 \U0001f600",
        "Normal message",
    ]
    session = ObjectStorageSession("special_chars_test", store)
    await session.add_items(messages(*texts))
    assert contents(await session.get_items()) == texts


# ---------------------------------------------------------------- session_settings


async def test_session_settings_default(store: ObjectSessionStore) -> None:
    """test_session_settings_default."""
    session = ObjectStorageSession("default_settings_test", store)
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit is None


@pytest.mark.parametrize("as_mapping", [False, True])
async def test_session_settings_constructor(store: ObjectSessionStore, as_mapping: bool) -> None:
    """test_session_settings_constructor (and its dictionary form)."""
    settings: Any = {"limit": 5} if as_mapping else SessionSettings(limit=5)
    session = ObjectStorageSession("constructor_settings_test", store, session_settings=settings)
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit == 5


async def test_get_items_uses_session_settings_limit(store: ObjectSessionStore) -> None:
    """test_get_items_uses_session_settings_limit."""
    session = ObjectStorageSession(
        "uses_settings_limit_test", store, session_settings=SessionSettings(limit=3)
    )
    await session.add_items(messages(*(f"Message {i}" for i in range(5))))
    assert contents(await session.get_items()) == ["Message 2", "Message 3", "Message 4"]


async def test_get_items_explicit_limit_overrides_session_settings(
    store: ObjectSessionStore,
) -> None:
    """test_get_items_explicit_limit_overrides_session_settings."""
    session = ObjectStorageSession(
        "explicit_override_test", store, session_settings=SessionSettings(limit=5)
    )
    await session.add_items(messages(*(f"Message {i}" for i in range(10))))
    assert contents(await session.get_items(limit=2)) == ["Message 8", "Message 9"]


async def test_session_settings_limit_zero(store: ObjectSessionStore) -> None:
    """test_session_settings_constructor_normalizes_dictionary ({"limit": 0})."""
    session = ObjectStorageSession("zero", store, session_settings={"limit": 0})
    await session.add_items(messages("a", "b"))
    assert await session.get_items() == []
    assert len(await session.get_items(limit=2)) == 2


# ---------------------------------------------------------------- concurrency


async def test_concurrent_access(store: ObjectSessionStore) -> None:
    """test_sqlite_session_concurrent_access, test_concurrent_access (Redis)."""
    session = ObjectStorageSession("concurrent_test", store)
    items = messages(*(f"Message {i}" for i in range(10)))
    await asyncio.gather(*(session.add_items([item]) for item in items))
    assert sorted(contents(await session.get_items())) == sorted(f"Message {i}" for i in range(10))


async def test_concurrent_pop_item_returns_each_item_once(store: ObjectSessionStore) -> None:
    """test_concurrent_pop_item_returns_each_row_once (SQLAlchemy)."""
    session = ObjectStorageSession("concurrent_pop", store)
    await session.add_items(messages(*(f"item {i}" for i in range(8))))
    popped = await asyncio.gather(*(session.pop_item() for _ in range(12)))
    got = [text_of(p) for p in popped if p is not None]
    assert sorted(got) == sorted(f"item {i}" for i in range(8))
    assert popped.count(None) == 4
    assert await session.get_items() == []


@pytest.mark.parametrize("operation", ["add", "pop", "clear"])
async def test_cancellation_waits_for_the_outcome(
    store: ObjectSessionStore, operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """test_mutation_cancellation_waits_for_authoritative_outcome (Redis),
    test_sqlite_session_post_commit_cancellation_propagates_after_known_outcome."""
    session = ObjectStorageSession("cancel", store)
    await session.add_items(messages("once"))
    landed, release = asyncio.Event(), asyncio.Event()

    def held(real: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)
            landed.set()
            await release.wait()
            return result

        return call

    monkeypatch.setattr(store, "save", held(store.save))
    monkeypatch.setattr(store, "delete", held(store.delete))
    call = {
        "add": lambda: session.add_items(messages("twice")),
        "pop": session.pop_item,
        "clear": session.clear_session,
    }[operation]
    task = asyncio.create_task(call())
    try:
        await landed.wait()
        for _ in range(2):  # cancelled twice while the write is done but not returned
            task.cancel()
            await asyncio.sleep(0)
        assert not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        release.set()
        await asyncio.gather(task, return_exceptions=True)
    expected = {"add": ["once", "twice"], "pop": [], "clear": []}[operation]
    assert contents(await session.get_items()) == expected


# ---------------------------------------------------------------- through the Runner


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_runner_remembers_turns(
    store: ObjectSessionStore, make_store: MakeStore, runner_method: str
) -> None:
    """test_session_memory_basic_functionality_parametrized, test_runner_integration."""
    session = ObjectStorageSession("test_session_123", store)
    model = ScriptedReplies()
    agent = Agent(name="test", model=model)
    model.say("San Francisco")
    first = await run_agent(
        runner_method,
        agent,
        "What city is the Golden Gate Bridge in?",
        session=session,
        make_store=make_store,
    )
    assert first.final_output == "San Francisco"
    model.say("California")
    second = await run_agent(
        runner_method, agent, "What state is it in?", session=session, make_store=make_store
    )
    assert second.final_output == "California"
    assert [text_of(i) for i in model.inputs[-1]] == [
        "What city is the Golden Gate Bridge in?",
        "San Francisco",
        "What state is it in?",
    ]
    assert len(await session.get_items()) == 4


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_runner_keeps_sessions_apart(
    store: ObjectSessionStore, make_store: MakeStore, runner_method: str
) -> None:
    """test_session_memory_different_sessions_parametrized, test_session_isolation."""
    model = ScriptedReplies()
    agent = Agent(name="test", model=model)
    cats = ObjectStorageSession("session_1", store)
    dogs = ObjectStorageSession("session_2", store)
    model.say("I like cats")
    await run_agent(runner_method, agent, "I like cats", session=cats, make_store=make_store)
    model.say("I like dogs")
    await run_agent(runner_method, agent, "I like dogs", session=dogs, make_store=make_store)
    model.say("Yes, you mentioned cats")
    result = await run_agent(
        runner_method, agent, "What did I say I like?", session=cats, make_store=make_store
    )
    assert result.final_output == "Yes, you mentioned cats"
    seen = " ".join(text_of(i) for i in model.inputs[-1])
    assert "cats" in seen and "dogs" not in seen


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_runner_appends_list_input(
    store: ObjectSessionStore, make_store: MakeStore, runner_method: str
) -> None:
    """test_session_memory_appends_list_input_by_default."""
    session = ObjectStorageSession("test_validation_parametrized", store)
    history = messages("Earlier message", "Saved reply")
    await session.add_items(history)
    new_input = messages("Test message")
    model = ScriptedReplies()
    model.say("This should run")
    await run_agent(
        runner_method, Agent(name="test", model=model), new_input, session=session,
        make_store=make_store,
    )  # fmt: skip
    assert model.inputs[-1] == history + new_input


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_runner_session_input_callback(
    store: ObjectSessionStore, make_store: MakeStore, runner_method: str
) -> None:
    """test_session_callback_prepared_input."""
    session = ObjectStorageSession("session_1", store)
    history = messages("Hello there.", "Hi, I'm here to assist you.")
    await session.add_items(history)

    def only_user_messages(old: list[Any], new: list[Any]) -> list[Any]:
        return [item for item in old if item["role"] == "user"] + new

    new_input = messages("What your name?")
    model = ScriptedReplies()
    model.say("I'm gpt-4o")
    await run_agent(
        runner_method,
        Agent(name="test", model=model),
        new_input,
        session=session,
        make_store=make_store,
        run_config=RunConfig(session_input_callback=only_user_messages),
    )
    assert model.inputs[-1] == [history[0], new_input[0]]


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_runner_repeated_history_does_not_grow_session(
    store: ObjectSessionStore, make_store: MakeStore, runner_method: str
) -> None:
    """test_session_callback_repeating_history_does_not_grow_session."""
    session = ObjectStorageSession("session_repeat", store)
    model = ScriptedReplies()
    agent = Agent(name="test", model=model)

    def repeat_first(old: list[Any], new: list[Any]) -> list[Any]:
        return [*old, old[0], *new] if old else new

    for turn in range(3):
        model.say(f"assistant {turn}")
        await run_agent(
            runner_method,
            agent,
            f"user {turn}",
            session=session,
            make_store=make_store,
            run_config=RunConfig(session_input_callback=repeat_first),
        )
    stored = await session.get_items()
    assert [text_of(i) for i in stored if i.get("role") == "user"] == [  # type: ignore[union-attr]
        "user 0",
        "user 1",
        "user 2",
    ]
    assert len(stored) == 6


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_runner_session_limit(
    store: ObjectSessionStore, make_store: MakeStore, runner_method: str
) -> None:
    """test_session_limit_parameter (test_session_limit.py)."""
    session = ObjectStorageSession("limit_test", store)
    model = ScriptedReplies()
    agent = Agent(name="test", model=model)
    for n in (1, 2, 3):
        model.say(f"Reply {n}")
        await run_agent(
            runner_method, agent, f"Message {n}", session=session, make_store=make_store
        )
    assert len(await session.get_items()) == 6
    model.say("Reply 4")
    await run_agent(
        runner_method,
        agent,
        "Message 4",
        session=session,
        make_store=make_store,
        run_config=RunConfig(session_settings=SessionSettings(limit=2)),
    )
    assert [text_of(i) for i in model.inputs[-1]] == ["Message 3", "Reply 3", "Message 4"]


@pytest.mark.parametrize("limit", [0, None, 100])
async def test_runner_session_limit_zero_none_larger(
    store: ObjectSessionStore, limit: int | None
) -> None:
    """test_session_limit_zero, test_session_limit_none_gets_all_history,
    test_session_limit_larger_than_history (Runner.run only: the method does not matter
    to the session, the three runner methods are covered above)."""
    session = ObjectStorageSession("limits", store)
    model = ScriptedReplies()
    agent = Agent(name="test", model=model)
    for n in (1, 2):
        model.say(f"Reply {n}")
        await run_agent("run", agent, f"Message {n}", session=session)
    model.say("Reply 3")
    await run_agent(
        "run",
        agent,
        "Message 3",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=limit)),
    )
    history = [] if limit == 0 else ["Message 1", "Reply 1", "Message 2", "Reply 2"]
    assert [text_of(i) for i in model.inputs[-1]] == [*history, "Message 3"]


async def test_runner_session_settings_override(store: ObjectSessionStore) -> None:
    """test_runner_with_session_settings_override."""
    session = ObjectStorageSession(
        "runner_override_test", store, session_settings=SessionSettings(limit=100)
    )
    await session.add_items(messages(*(f"Turn {i}" for i in range(10))))
    model = ScriptedReplies()
    model.say("Got it")
    await run_agent(
        "run",
        Agent(name="test", model=model),
        "New question",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=2)),
    )
    assert [text_of(i) for i in model.inputs[-1]] == ["Turn 8", "Turn 9", "New question"]


async def test_add_items_failure_propagates_in_streamed(store: ObjectSessionStore) -> None:
    """test_session_add_items_exception_propagates_in_streamed: an item the store cannot
    encode makes add_items fail; run_streamed raises it instead of hanging."""
    session = ObjectStorageSession("streamed_failure", store)
    model = ScriptedReplies()
    model.say("never stored")
    bad = cast(list[TResponseInputItem], [{"role": "user", "content": float("nan")}])
    with pytest.raises(ValueError, match=r"(?i)nan"):
        await asyncio.wait_for(
            run_agent("run_streamed", Agent(name="test", model=model), bad, session=session),
            timeout=120,
        )
    assert await session.get_items() == []

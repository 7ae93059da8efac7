"""Sessions as deployments use them: the SDK's Runner over several turns, read back and
continued by a fresh process; two processes adding to and popping from one session.

Runs on the file store and the three emulated clouds (a memory store cannot be shared
with another process). Each child process opens its session with ``from_url``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, cast

import pytest
from agents import Agent, Runner

from sessionstore import ObjectSessionStore
from sessionstore.integrations.openai_agents import ObjectStorageSession
from tests.openai_agents.conftest import ScriptedReplies, run_child

pytestmark = pytest.mark.parametrize("backend", ["file", "s3", "gcs", "azure"], indirect=True)

CONTINUE_IN_A_FRESH_PROCESS = """
import asyncio, json, sys
from agents import Agent, Runner
from sessionstore.integrations.openai_agents import ObjectStorageSession
from tests.openai_agents.conftest import ScriptedReplies

async def main(url):
    session = ObjectStorageSession.from_url("travel-chat", url)
    history = await session.get_items()
    model = ScriptedReplies()
    model.say("Your first question was about Lisbon.")
    result = await Runner.run(Agent(name="guide", model=model), "What did I ask first?",
                              session=session)
    print(json.dumps({"history": history, "model_input": model.inputs[-1],
                      "final_output": result.final_output}))
    await ObjectStorageSession.aclose_shared()

asyncio.run(main(sys.argv[1]))
"""


def _text(item: Any) -> str:
    content = item["content"]
    return content if isinstance(content, str) else str(content[0]["text"])


async def test_runner_turns_read_back_and_continued_by_a_fresh_process(
    store: ObjectSessionStore, store_url: str, child_env: dict[str, str]
) -> None:
    session = ObjectStorageSession("travel-chat", store)
    model = ScriptedReplies()
    agent = Agent(name="guide", model=model)
    turns = [
        ("What is the capital of Portugal?", "Lisbon."),
        ("What river runs through it?", "The Tagus."),
        ("Name a famous tram line there.", "Tram 28."),
    ]
    for question, answer in turns:
        model.say(answer)
        result = await Runner.run(agent, question, session=session)
        assert result.final_output == answer
    expected = [text for turn in turns for text in turn]
    assert [_text(i) for i in model.inputs[-1]] == expected[:-1]  # the history was sent

    before = await session.get_items()
    out = json.loads(run_child(CONTINUE_IN_A_FRESH_PROCESS, child_env, store_url))
    assert out["history"] == before
    assert [_text(i) for i in out["history"]] == expected
    assert [_text(i) for i in out["model_input"]] == [*expected, "What did I ask first?"]
    assert out["final_output"] == "Your first question was about Lisbon."
    after = await session.get_items()
    assert [_text(i) for i in after] == [
        *expected,
        "What did I ask first?",
        "Your first question was about Lisbon.",
    ]


ADD_THEN_POP = """
import asyncio, json, sys
from sessionstore import RetryPolicy
from sessionstore.integrations.openai_agents import ObjectStorageSession

# Correctness, not the bound, is tested here: a loaded CI machine may starve a writer
# for longer than the default 60 s, so the bound is wide.
PATIENT = RetryPolicy(attempts=10_000, base_delay=0.01, max_delay=0.5, deadline=600)

async def main(url, tag, phase):
    session = ObjectStorageSession.from_url("shared", url, conflict_retry=PATIENT)
    if phase == "add":
        async def writer(t):
            for n in range(25):
                await session.add_items([{"role": "user", "content": f"{tag}-{t}-{n}"}])
        await asyncio.gather(*(writer(t) for t in range(4)))
        popped = []
    else:
        popped = []
        async def popper():
            while (item := await session.pop_item()) is not None:
                popped.append(item["content"])
        await asyncio.gather(*(popper() for _ in range(4)))
    print(json.dumps(popped))
    await ObjectStorageSession.aclose_shared()

asyncio.run(main(*sys.argv[1:]))
"""


def _together(env: dict[str, str], *argvs: list[str]) -> list[Any]:
    """Run one child per argv at the same time; their parsed outputs, in order."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ADD_THEN_POP, *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, err
        outputs.append(json.loads(out))
    return outputs


async def test_two_processes_add_and_pop_each_item_once(
    store: ObjectSessionStore, store_url: str, child_env: dict[str, str]
) -> None:
    """Two processes x 4 tasks x 25 add_items (8 writers, as in the one-process test):
    exactly 200 items, each once, each task's in its order; then two processes x 4 tasks
    pop them all: every item exactly once."""
    _together(child_env, [store_url, "A", "add"], [store_url, "B", "add"])
    session = ObjectStorageSession("shared", store)
    got = [cast(dict[str, Any], i)["content"] for i in await session.get_items()]
    everything = [f"{p}-{t}-{n}" for p in "AB" for t in range(4) for n in range(25)]
    assert len(got) == 200
    assert sorted(got) == sorted(everything)
    for p in "AB":
        for t in range(4):
            mine = [g for g in got if g.startswith(f"{p}-{t}-")]
            assert mine == [f"{p}-{t}-{n}" for n in range(25)]

    first, second = _together(child_env, [store_url, "A", "pop"], [store_url, "B", "pop"])
    assert len(first) + len(second) == 200
    assert sorted(first + second) == sorted(everything)
    assert await session.get_items() == []

"""OpenAI Agents SDK sessions: requests and client CPU per ``add_items`` / ``get_items``.

An ``ObjectStorageSession`` holding 10 or 500 items (messages and tool calls shaped as
the SDK stores them) against the plain store calls on the same payload, interleaved
in the same run, on the same store:

- ``get_items()`` against ``store.load()`` of the same snapshot;
- ``add_items()`` of one turn (a user message and an assistant message; ``max_items``
  keeps the history at its size) against ``store.load()`` + ``store.save()`` of the
  same snapshot with the same items appended by hand (no condition, no retry).

Requests are counted at each SDK's HTTP layer (:mod:`benchmarks.request_counts`).
``python -m benchmarks.openai_agents [--quick]`` measures and rewrites the section of
BENCHMARKS.md between its markers; ``python -m benchmarks`` includes it too.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import statistics
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.ops import Cell, cloud_arguments, prepare_emulators, purge, run_batch, say
from benchmarks.request_counts import _counted_store, _hook_own_client
from sessionstore.testing import Emulator

HISTORIES = (10, 500)
START, END = "<!-- openai-agents:start -->", "<!-- openai-agents:end -->"
ROOT = Path(__file__).resolve().parent.parent


def history(n: int) -> list[dict[str, Any]]:
    """``n`` items as a run leaves them: user, tool call, tool output, assistant."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append({"role": "user", "content": f"Question {i}: " + "what about it? " * 6})
        elif kind == 1:
            out.append(
                {
                    "type": "function_call",
                    "call_id": f"call_{i}",
                    "name": "lookup",
                    "arguments": f'{{"query": "item {i}", "limit": 5}}',
                    "id": f"fc_{i:08d}",
                    "status": "completed",
                }
            )
        elif kind == 2:
            out.append(
                {"type": "function_call_output", "call_id": f"call_{i - 1}", "output": "ok " * 40}
            )
        else:
            out.append(
                {
                    "id": f"msg_{i:08d}",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "Here it is. " * 25, "annotations": []}
                    ],
                }
            )
    return out


TURN = history(4)[0:1] + history(4)[3:4]  # a user message and an assistant message


async def measure(
    provider: str,
    emulator: Emulator,
    *,
    rounds: int,
    ops: int,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[list[Cell], dict[str, dict[str, int]]]:
    """Cells (session vs plain store calls) and requests per operation, per history size."""
    from sessionstore.integrations.openai_agents import FORMAT, FORMAT_VERSION, ObjectStorageSession

    prefix = f"bench-agents-{uuid.uuid4().hex}/"
    store = _counted_store(provider, emulator, prefix)
    await _hook_own_client(store)
    cells: list[Cell] = []
    requests: dict[str, dict[str, int]] = {}
    try:
        for n in HISTORIES:
            progress(f"{provider} openai-agents session, {n} items")
            ids = [f"n{n}-{i}" for i in range(ops)]
            sessions = {i: ObjectStorageSession(i, store, max_items=n) for i in ids}
            items = history(n)
            for i in ids:
                await sessions[i].add_items(items)  # type: ignore[arg-type]
                snapshot = {
                    "format": FORMAT,
                    "formatVersion": FORMAT_VERSION,
                    "sessionId": i,
                    "tick": 1,
                    "items": items,
                }
                await store.save(f"hand-{i}", snapshot)

            async def session_get(i: str, sessions: dict[str, Any] = sessions) -> None:
                await sessions[i].get_items()

            async def hand_get(i: str) -> None:
                await store.load(f"hand-{i}")

            async def session_add(i: str, sessions: dict[str, Any] = sessions) -> None:
                await sessions[i].add_items(TURN)

            async def hand_add(i: str, n: int = n) -> None:
                snapshot = await store.load(f"hand-{i}")
                snapshot["items"] = (snapshot["items"] + TURN)[-n:]
                snapshot["tick"] += 1
                await store.save(f"hand-{i}", snapshot)

            size = f"{n} items"
            get, add = Cell(provider, "get_items", size, 1), Cell(provider, "add_items", size, 1)
            calls: dict[str, tuple[Callable[[str], Awaitable[None]], ...]] = {
                "store": (session_get, session_add),
                "hand": (hand_get, hand_add),
            }
            for rnd in range(rounds):
                for name in ("store", "hand") if rnd % 2 == 0 else ("hand", "store"):
                    for cell, fn in zip((get, add), calls[name], strict=True):
                        cpu_us, ops_s = await run_batch(fn, ids, 1)
                        getattr(cell, f"{name}_cpu_us").append(cpu_us)
                        getattr(cell, f"{name}_ops_s").append(ops_s)
            cells += [get, add]

            async def sent(fn: Callable[[str], Awaitable[None]], i: str = ids[0]) -> int:
                before = len(store._count)
                await fn(i)
                return len(store._count) - before

            requests[size] = {
                "get_items": await sent(session_get),
                "store.load": await sent(hand_get),
                "add_items": await sent(session_add),
                "store.load + store.save": await sent(hand_add),
            }
    finally:
        await store.aclose()
        if provider == "azure" and store.client is not None:
            await store.client.close()
        await purge(prefix, provider, emulator)
    return cells, requests


def section(
    cells: list[Cell], requests: dict[str, dict[str, dict[str, int]]], conditions: str = ""
) -> list[str]:
    """The BENCHMARKS.md section, between its markers."""
    lines = [
        START,
        "## OpenAI Agents SDK sessions",
        "",
        "`ObjectStorageSession` (`benchmarks/openai_agents.py`) holding 10 or 500 items (user"
        " messages, tool calls and outputs, assistant messages: about 0.3 KB each), against the"
        " plain store calls a user would make on the same snapshot, same store, interleaved"
        " rounds, concurrency 1: `get_items()` against `store.load()`, and `add_items()` of"
        " one turn (2 items; `max_items` keeps the size) against `store.load()` +"
        " `store.save()` with the items appended by hand (no condition). The session's extra"
        " work is the conditional write (and its write-id metadata) and the format check.",
        "",
        *([conditions, ""] if conditions else []),
        "| provider | op | history | session CPU µs/op | plain calls CPU µs/op"
        " | CPU ratio (rounds' range) | session ops/s | plain ops/s |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for c in cells:
        lines.append(
            f"| {c.provider} | {c.op} | {c.size} | {c.median('store_cpu_us'):,.0f}"
            f" | {c.median('hand_cpu_us'):,.0f} | **{c.cpu_ratio:.2f}**"
            f" ({min(c.ratios):.2f}-{max(c.ratios):.2f}) | {c.median('store_ops_s'):,.0f}"
            f" | {c.median('hand_ops_s'):,.0f} |"
        )
    ratios = [c.cpu_ratio for c in cells]
    if ratios:
        lines += [
            "",
            f"Median CPU ratio over the {len(cells)} cells: **{statistics.median(ratios):.2f}**"
            f" ({min(ratios):.2f}-{max(ratios):.2f}).",
        ]
    providers = list(requests)
    lines += [
        "",
        "Requests per operation, counted at the SDK's HTTP layer (uncontended; a writer that"
        " loses a race repeats its read and write):",
        "",
        "| operation | history | expected | " + " | ".join(providers) + " |",
        "| --- | --- | ---: |" + " ---: |" * len(providers),
    ]
    expected = {"get_items": 1, "store.load": 1, "add_items": 2, "store.load + store.save": 2}
    sizes = next(iter(requests.values()), {})
    for size, ops in sizes.items():
        for op in ops:
            counts = [requests[p][size][op] for p in providers]
            marks = [str(c) if c == expected[op] else f"**{c}** (!)" for c in counts]
            lines.append(f"| {op} | {size} | {expected[op]} | " + " | ".join(marks) + " |")
    lines += [
        "",
        "Reproduce: `.venv/bin/python -m benchmarks.openai_agents` (rewrites this section).",
        END,
    ]
    return lines


def replace_section(text: str, lines: list[str]) -> str:
    """``text`` with the section between the markers replaced (put before the notes, or
    at the end, if absent)."""
    block = "\n".join(lines)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    if "\n## Notes\n" in text:
        head, rest = text.split("\n## Notes\n", 1)
        return head.rstrip("\n") + "\n\n" + block + "\n\n## Notes\n" + rest
    return text.rstrip("\n") + "\n\n" + block + "\n"


async def run(
    emulators: dict[str, Emulator], rounds: int, ops: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Every provider's cells and request counts."""
    cells: list[Cell] = []
    requests: dict[str, dict[str, dict[str, int]]] = {}
    load = os.getloadavg()[0]
    for provider, emulator in emulators.items():
        got, requests[provider] = await measure(
            provider, emulator, rounds=rounds, ops=ops, progress=progress
        )
        cells += got
    conditions = (
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()}"
        f" shared cores, load average (1 min) {load:.1f} at the start and"
        f" {os.getloadavg()[0]:.1f} at the end; {rounds} rounds of {ops} operations per cell."
    )
    return {"cells": cells, "requests": requests, "conditions": conditions}


def main() -> None:
    """Measure every provider and rewrite the section of BENCHMARKS.md."""
    args = cloud_arguments(__doc__.split("\n")[0])
    emulators = prepare_emulators(args.providers, args.bucket)
    rounds, ops = (2, 5) if args.quick else (10, 20)
    results = asyncio.run(run(emulators, rounds, ops, say))
    path = ROOT / "BENCHMARKS.md"
    path.write_text(replace_section(path.read_text(), section(**results)))
    say(f"wrote the OpenAI Agents SDK section of {path}")


if __name__ == "__main__":
    main()

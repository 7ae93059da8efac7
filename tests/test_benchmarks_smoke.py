"""The benchmark code runs (tiny sizes, no timing assertions), so it does not rot.

Request counts are asserted: they are exact, not timings.
"""

import asyncio
from pathlib import Path

import pytest
from benchmarks import (
    calls,
    codec_table,
    coldstart,
    loads_check,
    local,
    openai_agents,
    ops,
    report,
    request_counts,
    serverless,
)

from sessionstore.testing import Emulator


def test_import_loads_no_sdk() -> None:
    cost = coldstart.import_cost(repeats=1)
    assert cost["sdk_modules"] == []
    assert cost["importtime_ms"] > 0 and cost["modules"] > 0


def test_codec_table_rows() -> None:
    rows = codec_table.table(repeats=1, sizes={"1 KB": 1_000})
    assert [r["codec"] for r in rows] == [
        "stdlib json (by hand)",
        "orjson alone (no check)",
        "sessionstore json",
        "sessionstore gzip",
        "sessionstore zstd",
    ]
    assert all(r["encode_mb_s"] > 0 and r["bytes"] > 0 for r in rows)


def test_loads_check_rows(tmp_path: Path) -> None:
    import sessionstore.codec

    other = tmp_path / "codec.py"  # another version of the codec, here the same one
    other.write_text(Path(sessionstore.codec.__file__).read_text())
    versions = {"other": loads_check._load_version("other", str(other))}
    rows = loads_check.measure(versions | loads_check.ALTERNATIVES, 1, {"1 KB": 1_000})
    assert [(r["size"], r["writer"]) for r in rows] == [("1 KB", "orjson"), ("1 KB", "stdlib json")]
    names = ["orjson.loads", "other", *loads_check.ALTERNATIVES]
    assert all(r[name][0] > 0 and r[name][1] > 0 for r in rows for name in names)


@pytest.fixture(params=["s3", "gcs", "azure"])
def emulator(request: pytest.FixtureRequest) -> tuple[str, Emulator]:
    fixture = {"s3": "localstack_s3", "gcs": "fake_gcs", "azure": "azurite"}[request.param]
    return request.param, request.getfixturevalue(fixture)


async def test_provider_end_to_end(emulator: tuple[str, Emulator], tmp_path: Path) -> None:
    provider, emu = emulator
    cells = await ops.measure(provider, emu, rounds=2, ops={"10 KB": 2, "1 MB": 1})
    assert len(cells) == 8
    assert all(len(c.ratios) == 2 and c.cpu_ratio > 0 and c.ops_ratio > 0 for c in cells)
    counts = await request_counts.count(provider, emu, n_list=3)
    work = await asyncio.to_thread(calls.count, provider, emu, 2)
    assert [r["size"] for r in work] == ["10 KB", "1 MB"]
    assert all(r["save store py"] > 0 and r["load hand c"] > 0 for r in work)
    for op, n in counts.items():
        assert str(n) == report._expected(op), (provider, op, n)
    first = coldstart.first_save(provider, emu, repeats=1)
    first_sync = coldstart.first_save(provider, emu, repeats=1, api="sync")
    assert first["store_ms"] > 0 and first_sync["hand_ms"] > 0
    assert first_sync["low"] <= first_sync["ratio"] <= first_sync["high"]
    await ops.purge(coldstart.COLD_PREFIX, provider, emu)
    warm = await asyncio.to_thread(serverless.warm, provider, emu, 2, {"10 KB": 2, "1 MB": 1})
    assert set(warm) == {"load 10 KB", "load 1 MB", "save 10 KB", "save 1 MB"}
    assert all(len(p.a) == len(p.b) == 2 and p.ratio()[0] > 0 for p in warm.values())
    invoke = await asyncio.to_thread(serverless.per_invocation, provider, emu, 2, 2)
    assert invoke["cpu"].ratio()[0] > 0 and invoke["wall"].ratio()[0] > 0
    results = {
        "cells": cells,
        "requests": {provider: counts},
        "calls": work,
        "codecs": codec_table.table(repeats=1, sizes={"1 KB": 1_000}),
        "coldstart": {
            "import": {
                "importtime_ms": 1.0,
                "import_ms": 1.0,
                "modules": 1,
                "sdk_modules": [],
                "top_self": [(1.0, "x")],
            },
            "provider_imports": {provider: {"store_ms": 1.0, "hand_ms": 1.0}},
        },
        "serverless": {
            "rounds": 2,
            "ops": {"10 KB": 2, "1 MB": 1},
            "repeats": 1,
            "first_save": {provider: first},
            "first_save_sync": {provider: first_sync},
            "warm": {provider: warm},
            "per_invocation": {provider: invoke},
        },
        "env": {
            "date": "today",
            "duration_s": 1.0,
            "quick": True,
            "machine": "m",
            "cpus": 2,
            "load_start": 0.0,
            "load_end": 0.0,
            "python": "3",
            "versions": {"x": "1"},
            "rounds": 2,
            "ops": {"10 KB": 2, "1 MB": 1},
        },
    }
    path = report.write(results, quick=True, root=tmp_path)
    page = path.read_text()
    assert f"| {provider} | save | 10 KB | 1 |" in page
    assert "## Serverless" in page and f"| {provider} | load | 1 MB |" in page
    spliced = serverless.splice(page, ["## Serverless", "", "new", ""])
    assert "new" in spliced and "## Notes" in spliced and spliced.count("## Serverless") == 1


async def test_openai_agents_sessions(emulator: tuple[str, Emulator]) -> None:
    provider, emu = emulator
    cells, requests = await openai_agents.measure(provider, emu, rounds=2, ops=1)
    assert [(c.op, c.size) for c in cells] == [
        (op, f"{n} items") for n in openai_agents.HISTORIES for op in ("get_items", "add_items")
    ]
    assert all(len(c.ratios) == 2 and c.cpu_ratio > 0 for c in cells)
    exact = {"get_items": 1, "store.load": 1, "add_items": 2, "store.load + store.save": 2}
    assert requests == {f"{n} items": exact for n in openai_agents.HISTORIES}
    lines = openai_agents.section(cells, {provider: requests})
    page = openai_agents.replace_section("# Benchmarks\n\n## Notes\n\n- a note\n", lines)
    assert page.index("## OpenAI Agents SDK sessions") < page.index("## Notes")
    assert "| add_items | 500 items | 2 | 2 |" in page
    assert openai_agents.replace_section(page, lines) == page


def test_local_stores_rows_and_section() -> None:
    results = {kind: local.measure(kind, 2, {"10 KB": 2, "1 MB": 1}) for kind in ("file", "sqlite")}
    assert all(len(p.a) == len(p.b) == 2 for cells in results.values() for p in cells.values())
    lines = local.section(results, 2)
    assert lines[0] == local.START and lines[-1] == local.END
    assert sum(line.startswith("| file |") for line in lines) == 4
    assert sum(line.startswith("| sqlite |") for line in lines) == 4
    page = "# B\n\n## Notes\n\nx\n"
    once = local.splice(page, lines)
    assert local.splice(once, lines) == once and once.index(local.START) < once.index("## Notes")

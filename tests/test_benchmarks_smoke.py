"""The benchmark code runs (tiny sizes, no timing assertions), so it does not rot."""

from pathlib import Path

from benchmarks import codec_table, coldstart, ops, report, request_counts

from sessionstore.testing import Emulator


def test_import_loads_no_sdk() -> None:
    assert coldstart.import_cost(repeats=1)["sdk_modules"] == []


async def test_one_provider_end_to_end(localstack_s3: Emulator, tmp_path: Path) -> None:
    cells = await ops.measure("s3", localstack_s3, repeats=1, ops={"10 KB": 2, "1 MB": 1})
    assert len(cells) == 8 and all(c.store_cpu_us > 0 and c.hand_cpu_us > 0 for c in cells)
    counts = await request_counts.count("s3", localstack_s3, n_list=3)
    assert counts["save"] == counts["load"] == counts["has"] == counts["delete"] == 1
    assert counts["save (reject_stale)"] == 2
    results = {
        "cells": cells,
        "requests": {"s3": counts},
        "codecs": codec_table.table(repeats=1)[:2],
        "coldstart": {
            "import": {"import_ms": 1.0, "modules": 1, "sdk_modules": []},
            "first_save": {"s3": {"store_ms": 1.0, "hand_ms": 1.0, "ratio": 1.0}},
        },
    }
    path = report.write(results, quick=True, root=tmp_path)
    assert "| s3 | save | 10 KB | 1 |" in path.read_text()

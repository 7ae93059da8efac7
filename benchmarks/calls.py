"""Work per operation without the machine's noise: function calls, counted.

A profile hook in every thread of the process (the event loop's and the GCS worker
threads) counts the Python function calls and the calls into C of one batch of
operations, store and hand-written baseline alike. The counts do not move with the
load of the machine, so they show what the store adds to, or saves from, the SDK
call. They do not weigh calls: ``json.dumps`` of a whole snapshot is one C call.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
from types import FrameType
from typing import Any

from benchmarks.ops import SIZES, run_batch, side_by_side
from benchmarks.snapshots import agentick_snapshot
from sessionstore.testing import Emulator

_counts: collections.Counter[str] = collections.Counter()


def _hook(frame: FrameType, event: str, arg: Any) -> None:
    if event == "call":
        _counts["py"] += 1
    elif event == "c_call":
        _counts["c"] += 1


async def _count(provider: str, emulator: Emulator, ops: int) -> list[dict[str, Any]]:
    ids = [f"s{i}" for i in range(ops)]
    rows = []
    async with side_by_side(provider, emulator, "calls") as impls:
        for size, target in SIZES.items():
            snapshot = agentick_snapshot(target)
            row: dict[str, Any] = {"provider": provider, "size": size}
            for name, impl in impls.items():
                await run_batch(lambda i, impl=impl, s=snapshot: impl.save(i, s), ids, 4)
                for op in ("save", "load"):

                    def call(i: str, impl: Any = impl, op: str = op, s: Any = snapshot) -> Any:
                        return impl.save(i, s) if op == "save" else impl.load(i)

                    _counts.clear()
                    sys.setprofile(_hook)
                    try:
                        await run_batch(call, ids, 1)
                    finally:
                        sys.setprofile(None)
                    row[f"{op} {name} py"] = _counts["py"] / ops
                    row[f"{op} {name} c"] = _counts["c"] / ops
            rows.append(row)
    return rows


def count(provider: str, emulator: Emulator, ops: int = 40) -> list[dict[str, Any]]:
    """Calls per save and per load, store and by hand, 10 KB and 1 MB, concurrency 1.

    Runs its own event loop, so that every thread it uses (the loop's default
    executor for the GCS baseline, the GCS store's pool) starts with the hook.
    """
    threading.setprofile(_hook)
    try:
        return asyncio.run(_count(provider, emulator, ops))
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]

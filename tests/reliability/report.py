"""Print the fault-injection figures of docs/RELIABILITY.md.

Run with the local cloud up: ``eval "$(localstack/up)" && .venv/bin/python -m
tests.reliability.report``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from sessionstore.testing import (
    azurite_emulator,
    fake_gcs_emulator,
    localstack_s3_emulator,
    purge_prefix,
)
from tests.reliability.scenario import build_store, run_faults

SEEDS = (1, 2, 3)


async def main() -> None:
    logging.getLogger("sessionstore").setLevel(logging.ERROR)  # no retry warnings
    emulators = {
        "s3": localstack_s3_emulator(),
        "gcs": fake_gcs_emulator(),
        "azure": azurite_emulator(),
    }
    print(
        "| provider | runs | requests | faults: error / reset / lost | operations"
        " | errors | lost | doubled |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for provider, emulator in emulators.items():
        totals = {
            "requests": 0,
            "error": 0,
            "reset": 0,
            "lost": 0,
            "ops": 0,
            "errors": 0,
            "lost_sessions": 0,
            "doubled": 0,
        }
        for seed in SEEDS:
            prefix = f"report-{uuid.uuid4().hex}/"
            try:
                figures = await run_faults(provider, emulator, prefix, rate=0.3, seed=seed)
            finally:
                async with build_store(provider, emulator, None, prefix) as store:
                    await purge_prefix(store)
            totals["requests"] += figures.requests
            for kind in ("error", "reset", "lost"):
                totals[kind] += figures.faults.get(kind, 0)
            totals["ops"] += figures.operations
            totals["errors"] += len(figures.errors)
            totals["lost_sessions"] += figures.lost
            totals["doubled"] += figures.doubled
        faulted = totals["error"] + totals["reset"] + totals["lost"]
        print(
            f"| {provider} | {len(SEEDS)} | {totals['requests']} | {totals['error']} /"
            f" {totals['reset']} / {totals['lost']} ({faulted / totals['requests']:.0%})"
            f" | {totals['ops']} | {totals['errors']} | {totals['lost_sessions']}"
            f" | {totals['doubled']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())

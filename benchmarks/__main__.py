"""``python -m benchmarks [--quick]``: run every benchmark and write BENCHMARKS.md.

Needs the local cloud (``eval "$(localstack/up)"``) and, for the chart, the ``bench``
extra (matplotlib). Prints its progress; writes BENCHMARKS.md at the repository root
and benchmarks/chart.png.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import os
import platform
import time
from importlib import metadata
from typing import Any

from benchmarks import (
    calls,
    codec_table,
    coldstart,
    local,
    openai_agents,
    ops,
    report,
    request_counts,
    serverless,
)
from sessionstore.testing import Emulator

PACKAGES = (
    "aioboto3",
    "botocore",
    "google-cloud-storage",
    "azure-storage-blob",
    "orjson",
    "tenacity",
    "zstandard",
)


async def _cloud(
    emulators: dict[str, Emulator], rounds: int, counts: dict[str, int]
) -> dict[str, Any]:
    cells: list[ops.Cell] = []
    requests = {}
    for provider, emulator in emulators.items():
        ops.say(f"{provider}: CPU and throughput")
        cells += await ops.measure(provider, emulator, rounds=rounds, ops=counts, progress=ops.say)
        ops.say(f"{provider}: requests per operation")
        requests[provider] = await request_counts.count(provider, emulator)
    return {"cells": cells, "requests": requests}


async def _cleanup_cold(emulators: dict[str, Emulator]) -> None:
    for provider, emulator in emulators.items():
        await ops.purge(coldstart.COLD_PREFIX, provider, emulator)


def main() -> None:
    """Run it all and write the report."""
    args = ops.cloud_arguments(__doc__.split("\n")[0])
    emulators = ops.prepare_emulators(args.providers, args.bucket)
    rounds = 2 if args.quick else 10
    counts = {"10 KB": 40, "1 MB": 8} if args.quick else {"10 KB": 150, "1 MB": 40}
    started, load_start = time.monotonic(), os.getloadavg()[0]
    results = asyncio.run(_cloud(emulators, rounds, counts))
    if importlib.util.find_spec("agents") is not None:  # the openai-agents extra
        results["agents"] = asyncio.run(
            openai_agents.run(
                emulators, rounds=rounds, ops=5 if args.quick else 20, progress=ops.say
            )
        )
    else:
        ops.say("OpenAI Agents SDK sessions: skipped (pip install -e '.[openai-agents]')")
    results["calls"] = []
    for provider, emulator in emulators.items():
        ops.say(f"{provider}: function calls per operation")
        results["calls"] += calls.count(provider, emulator, ops=20 if args.quick else 40)
    ops.say("codecs")
    results["codecs"] = codec_table.table(repeats=3 if args.quick else 7)
    ops.say("cold start")
    repeats = 3 if args.quick else 7
    results["coldstart"] = {
        "import": coldstart.import_cost(repeats),
        "provider_imports": {p: coldstart.provider_imports(p, repeats) for p in emulators},
    }
    results["serverless"] = serverless.measure(emulators, args.quick, ops.say)
    ops.say("local stores")
    results["local"] = local.run(args.quick)
    asyncio.run(_cleanup_cold(emulators))
    results["env"] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": time.monotonic() - started,
        "quick": args.quick,
        "machine": f"{platform.machine()} {platform.system()}",
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in PACKAGES},
        "bucket": args.bucket,
        "rounds": rounds,
        "ops": counts,
    }
    notes_file = os.path.join(os.path.dirname(__file__), "NOTES.md")
    if os.path.exists(notes_file):
        with open(notes_file) as f:
            results["notes"] = f.read().splitlines()
    ops.say(f"wrote {report.write(results, args.quick)}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()

"""``python -m benchmarks [--quick]``: run every benchmark and write BENCHMARKS.md.

Needs the local cloud: ``eval "$(localstack/up)"`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from benchmarks import codec_table, coldstart, ops, report, request_counts
from sessionstore.testing import azure_emulator, gcs_emulator, s3_emulator


async def _cloud(quick: bool) -> dict[str, Any]:
    emulators = {"s3": s3_emulator(), "gcs": gcs_emulator(), "azure": azure_emulator()}
    os.environ.setdefault("STORAGE_EMULATOR_HOST", emulators["gcs"].endpoint)
    counts = {"10 KB": 40 if quick else 150, "1 MB": 8 if quick else 30}
    cells = []
    requests = {}
    for provider, emulator in emulators.items():
        print(f"measuring {provider} ...", flush=True)
        cells += await ops.measure(provider, emulator, repeats=1 if quick else 3, ops=counts)
        requests[provider] = await request_counts.count(provider, emulator)
    return {"cells": cells, "requests": requests, "emulators": emulators}


def main() -> None:
    """Run it all and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller batches")
    args = parser.parse_args()
    results = asyncio.run(_cloud(args.quick))
    print("codecs ...", flush=True)
    results["codecs"] = codec_table.table(repeats=3 if args.quick else 7)
    print("cold start ...", flush=True)
    results["coldstart"] = {
        "import": coldstart.import_cost(),
        "first_save": {
            p: coldstart.first_save(p, e, repeats=3 if args.quick else 5)
            for p, e in results["emulators"].items()
        },
    }
    notes_file = os.path.join(os.path.dirname(__file__), "NOTES.md")
    if os.path.exists(notes_file):
        with open(notes_file) as f:
            results["notes"] = f.read().splitlines()
    print(f"wrote {report.write(results, args.quick)}")


if __name__ == "__main__":
    main()

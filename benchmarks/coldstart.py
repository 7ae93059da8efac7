"""Cold start: import cost, modules loaded, and a fresh process's first save."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from sessionstore.testing import Emulator

SDK_ROOTS = ("boto3", "botocore", "aioboto3", "aiobotocore", "google", "azure", "aiohttp")


def _wall(code: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def import_cost(repeats: int = 7) -> dict[str, Any]:
    """``import sessionstore`` time (over a bare interpreter) and the modules it loads."""
    bare = statistics.median(_wall("pass") for _ in range(repeats))
    imp = statistics.median(_wall("import sessionstore") for _ in range(repeats))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json; before = set(sys.modules); import sessionstore;"
            "print(json.dumps(sorted(set(sys.modules) - before)))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    modules = json.loads(out)
    sdks = [m for m in modules if m.split(".")[0] in SDK_ROOTS]
    return {"import_ms": (imp - bare) * 1000, "modules": len(modules), "sdk_modules": sdks}


_STORE = """
import asyncio
from sessionstore.stores.{module} import {cls}
async def main():
    async with {cls}({bucket!r}, prefix="bench-cold/", **{options!r}) as store:
        await store.save("cold", {{"tick": 1, "timeline": []}})
asyncio.run(main())
"""

_HAND = {
    "s3": """
import asyncio, json, aioboto3
async def main():
    async with aioboto3.Session().client("s3", **{options!r}) as c:
        await c.put_object(Bucket={bucket!r}, Key="bench-cold/hand.json",
                           Body=json.dumps({{"tick": 1, "timeline": []}}).encode())
asyncio.run(main())
""",
    "gcs": """
import json
from google.cloud import storage
storage.Client(project="test").bucket({bucket!r}).blob("bench-cold/hand.json").upload_from_string(
    json.dumps({{"tick": 1, "timeline": []}}), content_type="application/json")
""",
    "azure": """
import asyncio, json
from azure.storage.blob.aio import ContainerClient
async def main():
    async with ContainerClient.from_connection_string({options[connection_string]!r},
                                                      {bucket!r}) as c:
        await c.upload_blob("bench-cold/hand.json", json.dumps({{"tick": 1}}).encode(),
                            overwrite=True)
asyncio.run(main())
""",
}
_CLASSES = {
    "s3": ("s3", "S3SessionStore"),
    "gcs": ("gcs", "GCSSessionStore"),
    "azure": ("azure", "AzureBlobSessionStore"),
}


def first_save(provider: str, emulator: Emulator, repeats: int = 5) -> dict[str, float]:
    """Median wall time of a fresh process that saves once: store vs by hand."""
    module, cls = _CLASSES[provider]
    store_code = _STORE.format(
        module=module, cls=cls, bucket=emulator.bucket, options=emulator.options
    )
    hand_code = _HAND[provider].format(bucket=emulator.bucket, options=emulator.options)
    env = {**os.environ}
    store_times, hand_times = [], []
    for rep in range(repeats):
        pair = [(store_code, store_times), (hand_code, hand_times)]
        for code, times in pair if rep % 2 == 0 else reversed(pair):
            times.append(_wall(code, env))
    store_s, hand_s = statistics.median(store_times), statistics.median(hand_times)
    return {"store_ms": store_s * 1000, "hand_ms": hand_s * 1000, "ratio": store_s / hand_s}

"""Cold start: import cost, modules loaded, and a fresh process's first save.

Every figure is a median over fresh interpreters (``sys.executable``), store and
hand-written baseline alternating, so a slow moment of the machine hits both.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from sessionstore.testing import Emulator

#: Top-level packages of the cloud SDKs and their HTTP stacks: none may load on import.
SDK_ROOTS = (
    "boto3",
    "botocore",
    "aioboto3",
    "aiobotocore",
    "aiohttp",
    "google",
    "azure",
    "requests",
    "urllib3",
)
#: What the hand-written code of each provider imports (stdlib json and asyncio too).
SDK_IMPORTS = {
    "s3": "import asyncio, json, aioboto3",
    "gcs": "import asyncio, json; from google.cloud import storage",
    "azure": "import asyncio, json; from azure.storage.blob.aio import ContainerClient",
}
_STORE_MODULES = {
    "s3": ("sessionstore.stores.s3", "S3SessionStore"),
    "gcs": ("sessionstore.stores.gcs", "GCSSessionStore"),
    "azure": ("sessionstore.stores.azure", "AzureBlobSessionStore"),
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _env() -> dict[str, str]:
    """This environment, with bytecode caching on: an installed package has its .pyc
    files (pip compiles them), so a fresh process does not compile sources, whatever
    ``PYTHONDONTWRITEBYTECODE`` says here."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], check=True, env=env or _env(), capture_output=True, text=True
    )


def _wall(code: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    _run(["-c", code], env)
    return time.perf_counter() - start


def importtime(statement: str) -> dict[str, Any]:
    """``python -X importtime -c statement``: total µs and the modules by self time.

    The total is the sum of the cumulative times of the top-level imports the
    statement triggered (the interpreter's own startup imports excluded).
    """
    baseline = {m for _, _, _, m in _parse(_run(["-X", "importtime", "-c", "pass"]).stderr)}
    rows = _parse(_run(["-X", "importtime", "-c", statement]).stderr)
    new = [r for r in rows if r[3] not in baseline]
    total = sum(cum for _, cum, depth, _ in new if depth == 0)
    by_self = sorted(((s, m) for s, _, _, m in new), reverse=True)
    return {"total_us": total, "modules": len(new), "top_self": by_self[:8]}


def _parse(stderr: str) -> list[tuple[int, int, int, str]]:
    rows = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            depth = (len(m.group(3)) - 1) // 2
            rows.append((int(m.group(1)), int(m.group(2)), depth, m.group(4)))
    return rows


def import_cost(repeats: int = 7) -> dict[str, Any]:
    """``import sessionstore``: -X importtime (median), wall time, modules, SDKs loaded."""
    _run(["-c", "import sessionstore, " + ", ".join(m for m, _ in _STORE_MODULES.values())])
    runs = [importtime("import sessionstore") for _ in range(repeats)]
    bare = statistics.median(_wall("pass") for _ in range(repeats))
    imp = statistics.median(_wall("import sessionstore") for _ in range(repeats))
    out = _run(
        [
            "-c",
            "import sys, json; before = set(sys.modules); import sessionstore;"
            "print(json.dumps(sorted(set(sys.modules) - before)))",
        ]
    ).stdout
    modules = json.loads(out)
    sdks = [m for m in modules if m.split(".")[0] in SDK_ROOTS]
    typical = sorted(runs, key=lambda r: r["total_us"])[len(runs) // 2]
    return {
        "importtime_ms": statistics.median(r["total_us"] for r in runs) / 1000,
        "import_ms": (imp - bare) * 1000,
        "modules": len(modules),
        "sdk_modules": sdks,
        "top_self": [(us / 1000, name) for us, name in typical["top_self"][:5]],
    }


def provider_imports(provider: str, repeats: int = 5) -> dict[str, float]:
    """-X importtime of the store's module vs what the hand-written code imports (ms)."""
    module, _ = _STORE_MODULES[provider]
    store, hand = [], []
    for _ in range(repeats):
        store.append(importtime(f"import asyncio, {module}")["total_us"] / 1000)
        hand.append(importtime(SDK_IMPORTS[provider])["total_us"] / 1000)
    return {"store_ms": statistics.median(store), "hand_ms": statistics.median(hand)}


_SNAPSHOT = '{"version": "1.0", "sessionId": "cold", "tick": 1, "timeline": []}'

_STORE = """
import asyncio
from {module} import {cls}
async def main():
    async with {cls}({bucket!r}, prefix="bench-cold/", **{options!r}) as store:
        await store.save("cold", {snapshot})
asyncio.run(main())
"""

_HAND = {
    "s3": """
import asyncio, json, aioboto3
async def main():
    async with aioboto3.Session().client("s3", **{options!r}) as c:
        await c.put_object(Bucket={bucket!r}, Key="bench-cold/hand.json",
                           Body=json.dumps({snapshot}).encode(),
                           ContentType="application/json")
asyncio.run(main())
""",
    "gcs": """
import asyncio, json
from google.cloud import storage
async def main():
    blob = storage.Client(project="test").bucket({bucket!r}).blob("bench-cold/hand.json")
    await asyncio.to_thread(blob.upload_from_string, json.dumps({snapshot}),
                            content_type="application/json")
asyncio.run(main())
""",
    "azure": """
import asyncio, json
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient
async def main():
    async with ContainerClient.from_connection_string({options[connection_string]!r},
                                                      {bucket!r}) as c:
        await c.upload_blob("bench-cold/hand.json", json.dumps({snapshot}).encode(),
                            overwrite=True,
                            content_settings=ContentSettings(content_type="application/json"))
asyncio.run(main())
""",
}


_STORE_SYNC = """
from sessionstore import SyncSessionStore
from {module} import {cls}
store = SyncSessionStore({cls}({bucket!r}, prefix="bench-cold/", **{options!r}))
store.save("cold", {snapshot})
"""

_HAND_SYNC = {
    "s3": """
import json, boto3
boto3.client("s3", **{options!r}).put_object(
    Bucket={bucket!r}, Key="bench-cold/hand.json", Body=json.dumps({snapshot}).encode(),
    ContentType="application/json")
""",
    "gcs": """
import json
from google.cloud import storage
blob = storage.Client(project="test").bucket({bucket!r}).blob("bench-cold/hand.json")
blob.upload_from_string(json.dumps({snapshot}), content_type="application/json")
""",
    "azure": """
import json
from azure.storage.blob import ContainerClient, ContentSettings
client = ContainerClient.from_connection_string({options[connection_string]!r}, {bucket!r})
client.upload_blob("bench-cold/hand.json", json.dumps({snapshot}).encode(), overwrite=True,
                   content_settings=ContentSettings(content_type="application/json"))
""",
}


def first_save(
    provider: str, emulator: Emulator, repeats: int = 5, api: str = "async"
) -> dict[str, float]:
    """Wall time of a fresh process that saves once: store vs by hand, in pairs.

    ``api="async"``: the store in ``asyncio.run`` vs the same (async) SDK by hand;
    ``api="sync"``: a SyncSessionStore vs the provider's synchronous SDK by hand.
    Returns the medians, the median of the per-pair ratios and their range.
    """
    module, cls = _STORE_MODULES[provider]
    fmt = {"bucket": emulator.bucket, "options": emulator.options, "snapshot": _SNAPSHOT}
    store_code = (_STORE if api == "async" else _STORE_SYNC).format(module=module, cls=cls, **fmt)
    hand_code = (_HAND if api == "async" else _HAND_SYNC)[provider].format(**fmt)
    env = _env()
    _wall(store_code, env)  # warm the OS file cache for both before timing
    _wall(hand_code, env)
    store_times, hand_times = [], []
    for rep in range(repeats):
        pair = [(store_code, store_times), (hand_code, hand_times)]
        for code, times in pair if rep % 2 == 0 else reversed(pair):
            times.append(_wall(code, env))
    ratios = [s / h for s, h in zip(store_times, hand_times, strict=True)]
    return {
        "store_ms": statistics.median(store_times) * 1000,
        "hand_ms": statistics.median(hand_times) * 1000,
        "ratio": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
    }


COLD_PREFIX = "bench-cold/"

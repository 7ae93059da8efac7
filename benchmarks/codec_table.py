"""Serialization and compression of agentick-shaped snapshots: speed and ratio."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.snapshots import agentick_snapshot
from sessionstore.codec import Codec

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "5 MB": 5_000_000}


def _best_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def table(repeats: int = 7) -> list[dict[str, Any]]:
    """One row per (size, codec): encode/decode ms, MB/s, stored bytes and ratio."""
    rows = []
    for size_name, size in SIZES.items():
        snap = agentick_snapshot(size)
        raw = json.dumps(snap).encode()
        rows.append(
            {
                "size": size_name,
                "codec": "stdlib json (reference)",
                "bytes": len(raw),
                "ratio": 1.0,
                "encode_ms": _best_ms(lambda s=snap: json.dumps(s).encode(), repeats),
                "decode_ms": _best_ms(lambda r=raw: json.loads(r), repeats),
            }
        )
        for compression in (None, "gzip", "zstd"):
            codec = Codec(compression=compression, compress_min_bytes=0)
            body = codec.encode(snap).body
            rows.append(
                {
                    "size": size_name,
                    "codec": f"sessionstore {compression or 'json'}",
                    "bytes": len(body),
                    "ratio": len(raw) / len(body),
                    "encode_ms": _best_ms(lambda c=codec, s=snap: c.encode(s), repeats),
                    "decode_ms": _best_ms(lambda c=codec, b=body: c.decode(b, "bench"), repeats),
                }
            )
    for row in rows:
        mb = len(json.dumps(agentick_snapshot(SIZES[row["size"]])).encode()) / 1e6
        row["encode_mb_s"] = mb / (row["encode_ms"] / 1000)
        row["decode_mb_s"] = mb / (row["decode_ms"] / 1000)
    return rows

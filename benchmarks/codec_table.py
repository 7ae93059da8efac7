"""Serialization and compression of agentick-shaped snapshots: speed and ratio.

Rows per size: stdlib ``json`` (what hand-written code uses, the reference),
bare ``orjson`` (what the store's JSON costs without its NaN/type check), and the
store's codec as configured by ``compression=None | "gzip" | "zstd"``. MB/s are
megabytes of JSON (the stdlib's output) per second, so rows compare directly.
Each figure is the best of several timings (``timeit``'s rule: on a busy machine
noise only adds time), in this one process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.snapshots import agentick_snapshot
from sessionstore.codec import Codec

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "5 MB": 5_000_000}


def _best_ms(fn: Callable[[], Any], repeats: int) -> float:
    number = 1
    while True:  # enough calls per timing to be well above the clock's resolution
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start > 0.005 or number >= 1000:
            break
        number *= 10
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times) * 1000  # noise only ever adds time: the best run is the cost


def _row(
    size: str,
    name: str,
    raw: bytes,
    body: bytes,
    encode: Callable[[], Any],
    decode: Callable[[], Any],
    repeats: int,
) -> dict[str, Any]:
    enc, dec = _best_ms(encode, repeats), _best_ms(decode, repeats)
    mb = len(raw) / 1e6
    return {
        "size": size,
        "codec": name,
        "bytes": len(body),
        "ratio": len(raw) / len(body),
        "encode_ms": enc,
        "decode_ms": dec,
        "encode_mb_s": mb / (enc / 1000),
        "decode_mb_s": mb / (dec / 1000),
    }


def table(repeats: int = 7, sizes: dict[str, int] = SIZES) -> list[dict[str, Any]]:
    """One row per (size, codec): encode/decode ms, MB/s, stored bytes and ratio."""
    rows = []
    for size, target in sizes.items():
        snap = agentick_snapshot(target)
        raw = json.dumps(snap).encode()
        rows.append(
            _row(
                size,
                "stdlib json (by hand)",
                raw,
                raw,
                lambda s=snap: json.dumps(s).encode(),
                lambda r=raw: json.loads(r),
                repeats,
            )
        )
        plain = orjson.dumps(snap)
        rows.append(
            _row(
                size,
                "orjson alone (no check)",
                raw,
                plain,
                lambda s=snap: orjson.dumps(s),
                lambda b=plain: orjson.loads(b),
                repeats,
            )
        )
        for compression in (None, "gzip", "zstd"):
            codec = Codec(compression=compression, compress_min_bytes=0)
            body = codec.encode(snap).body
            rows.append(
                _row(
                    size,
                    f"sessionstore {compression or 'json'}",
                    raw,
                    body,
                    lambda c=codec, s=snap: c.encode(s),
                    lambda c=codec, b=body: c.decode(b, "bench"),
                    repeats,
                )
            )
    return rows

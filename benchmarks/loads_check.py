"""What the exact-integer check costs on load: ``JsonSerializer().loads`` against bare
``orjson.loads`` of the same body, in one process.

``python -m benchmarks.loads_check [--alternatives] [NAME=CODEC_FILE ...]`` also times the
``JsonSerializer`` of other versions of ``src/sessionstore/codec.py`` (for example
``before=/tmp/codec_main.py``, written by ``git show main:src/sessionstore/codec.py``)
in the same rounds, so before and after are measured side by side. Bodies are the
benchmark's agentick-shaped snapshots as orjson writes them (the store's own) and
as the stdlib's ``json.dumps`` writes them (another writer's spacing and escapes).
Times are the best of the rounds (noise only adds time); a ratio is the median, over
the rounds, of a loader's time over ``orjson.loads``'s in the same round (the loaders
take turns within a round, so a busy moment weighs on all of them). ``--alternatives`` adds other
checks (``orjson.loads`` then only the check, without what a hit would cost): a
regular expression for a run of 20 digits, a translation of every byte to a digit
class then a search, a walk of every value, and a comparison with what orjson
writes again.
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.snapshots import agentick_snapshot
from sessionstore.codec import JsonSerializer, _rounded_float

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "5 MB": 5_000_000}


def _load_version(name: str, path: str) -> Callable[[bytes], Any]:
    spec = importlib.util.spec_from_file_location(f"_codec_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.JsonSerializer().loads  # type: ignore[no-any-return]


_LONG_RUN = re.compile(rb"[0-9]{20}|-[0-9]{19}")
_DIGIT_CLASS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_RUN_OF_19 = b"0" * 19


def _regex(data: bytes) -> Any:
    obj = orjson.loads(data)
    _LONG_RUN.search(data)
    return obj


def _translate(data: bytes) -> Any:
    obj = orjson.loads(data)
    _ = _RUN_OF_19 in data.translate(_DIGIT_CLASS)
    return obj


def _walk(data: bytes) -> Any:
    obj = orjson.loads(data)
    _rounded_float([obj], -1)
    return obj


def _rewrite(data: bytes) -> Any:
    obj = orjson.loads(data)
    _ = orjson.dumps(obj) == data
    return obj


ALTERNATIVES = {
    "regex": _regex,
    "translate+find": _translate,
    "walk all": _walk,
    "dumps ==": _rewrite,
}


def _us(fn: Callable[[bytes], Any], body: bytes, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn(body)
    return (time.perf_counter() - start) / number * 1e6


def measure(
    versions: dict[str, Callable[[bytes], Any]], rounds: int = 21, sizes: dict[str, int] = SIZES
) -> list[dict[str, Any]]:
    """One row per (size, writer): each loader's best µs, and the median over the rounds
    of its time over orjson.loads's time in the same round."""
    loaders = {"orjson.loads": orjson.loads, **versions}
    rows = []
    for size, target in sizes.items():
        snap = agentick_snapshot(target)
        for writer, body in (
            ("orjson", orjson.dumps(snap)),
            ("stdlib json", json.dumps(snap).encode()),
        ):
            for fn in loaders.values():  # every loader gives the same snapshot
                assert fn(body) == snap
            number = max(3, 5_000_000 // len(body))
            times: dict[str, list[float]] = {name: [] for name in loaders}
            for _ in range(rounds):  # loaders interleaved: a busy moment hits all
                for name, fn in loaders.items():
                    times[name].append(_us(fn, body, number))
            base = times["orjson.loads"]
            rows.append(
                {"size": size, "writer": writer, "bytes": len(body)}
                | {
                    name: (min(ts), statistics.median(t / b for t, b in zip(ts, base, strict=True)))
                    for name, ts in times.items()
                }
            )
    return rows


def main(argv: list[str]) -> None:
    alternatives = "--alternatives" in argv
    files = [a.split("=", 1) for a in argv if a != "--alternatives"]
    versions = {name: _load_version(name, path) for name, path in files}
    versions["this tree"] = JsonSerializer().loads
    if alternatives:
        versions |= ALTERNATIVES
    rows = measure(versions)
    names = ["orjson.loads", *versions]
    print("| size | written by | bytes | " + " | ".join(f"{n} µs (ratio)" for n in names) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in names) + " |")
    for row in rows:
        cells = " | ".join(f"{row[n][0]:,.1f} ({row[n][1]:.2f})" for n in names)
        print(f"| {row['size']} | {row['writer']} | {row['bytes']:,} | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1:])

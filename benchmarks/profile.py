"""Profile one cell: ``python -m benchmarks.profile s3 save 10KB [--flat | --calls]``.

Runs ``--ops`` operations of the store and of the hand-written baseline (same
provider, size and concurrency), each under its own profiler, and prints both, so
they can be compared frame by frame:

- default: pyinstrument call trees (the ``bench`` extra); ``--flat``: pyinstrument's
  flat list of self time, SDK frames included;
- ``--calls``: cProfile's exact counts, function calls per operation in total and
  the functions whose self time differs most, which, unlike sampled times, do not
  move with the machine's load.

Both profilers see the event loop's thread only: GCS's worker threads are not in
them (``py-spy record`` sees every thread). Needs the local cloud
(``eval "$(localstack/up)"``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.ops import SIZES, cpu_seconds, run_batch, side_by_side
from benchmarks.snapshots import agentick_snapshot
from sessionstore.testing import azurite_emulator, fake_gcs_emulator, localstack_s3_emulator

EMULATORS = {"s3": localstack_s3_emulator, "gcs": fake_gcs_emulator, "azure": azurite_emulator}


class _Pyinstrument:
    def __init__(self, interval: float, flat: bool) -> None:
        from pyinstrument import Profiler

        self.profiler = Profiler(interval=interval, async_mode="disabled")
        self.flat = flat

    def start(self) -> None:
        self.profiler.start()

    def stop(self) -> None:
        self.profiler.stop()

    def report(self, ops: int) -> str:
        text = self.profiler.output_text(unicode=True, show_all=self.flat, flat=self.flat)
        return "\n".join(text.splitlines()[:60]) if self.flat else text


class _Calls:
    def __init__(self) -> None:
        self.profiler = cProfile.Profile()
        self.per_op: dict[str, tuple[float, float]] = {}

    def start(self) -> None:
        self.profiler.enable()

    def stop(self) -> None:
        self.profiler.disable()

    def report(self, ops: int) -> str:
        stats: Any = pstats.Stats(self.profiler)
        for (path, line, name), (_, calls, self_s, _, _) in stats.stats.items():
            where = f"{path.split('site-packages/')[-1]}:{line}({name})"
            self.per_op[where] = (calls / ops, self_s / ops * 1e6)
        total = sum(calls for calls, _ in self.per_op.values())
        return f"{total:,.0f} function calls per operation"


async def profile(
    provider: str,
    op: str,
    size: str,
    *,
    ops: int,
    concurrency: int,
    make: Callable[[], Any],
) -> dict[str, Any]:
    """Profile ``op`` on store and baseline; return their profilers by name."""
    emulator = EMULATORS[provider]()
    os.environ.setdefault("STORAGE_EMULATOR_HOST", fake_gcs_emulator().endpoint)
    snapshot = agentick_snapshot(SIZES[size])
    ids = [f"s{i}" for i in range(ops)]
    profilers = {}
    async with side_by_side(provider, emulator, "prof") as impls:
        for name, impl in (("store", impls["store"]), ("by hand", impls["hand"])):

            def save(i: str, impl: Any = impl) -> Awaitable[Any]:
                return impl.save(i, snapshot)

            def load(i: str, impl: Any = impl) -> Awaitable[Any]:
                return impl.load(i)

            await run_batch(save, ids[:32], 32)  # open the client, fill its pool
            if op == "load":
                await run_batch(save, ids, 32)
            profiler = make()
            cpu0 = cpu_seconds()
            profiler.start()
            await run_batch(save if op == "save" else load, ids, concurrency)
            profiler.stop()
            profiler.cpu_us = (cpu_seconds() - cpu0) / ops * 1e6
            profilers[name] = profiler
    return profilers


def main() -> None:
    """Print the two profiles of one cell."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("provider", choices=sorted(EMULATORS))
    parser.add_argument("op", choices=("save", "load"))
    parser.add_argument("size", choices=[s.replace(" ", "") for s in SIZES])
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.0005, help="pyinstrument, s")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--flat", action="store_true", help="pyinstrument: flat self time")
    mode.add_argument("--calls", action="store_true", help="cProfile: exact call counts")
    args = parser.parse_args()
    size = next(s for s in SIZES if s.replace(" ", "") == args.size)

    def make() -> Any:
        return _Calls() if args.calls else _Pyinstrument(args.interval, args.flat)

    profilers = asyncio.run(
        profile(
            args.provider,
            args.op,
            size,
            ops=args.ops,
            concurrency=args.concurrency,
            make=make,
        )
    )
    for name, p in profilers.items():
        print(f"== {name}: {p.cpu_us:,.0f} CPU µs/op under the profiler; {p.report(args.ops)}")
    if args.calls:
        store, hand = profilers["store"].per_op, profilers["by hand"].per_op
        rows = sorted(
            set(store) | set(hand),
            key=lambda k: store.get(k, (0, 0))[1] - hand.get(k, (0, 0))[1],
        )
        print("\nself µs/op, store minus by hand (profiled, so inflated), most different:")
        for where in rows[-20:][::-1] + rows[:10]:
            s, h = store.get(where, (0.0, 0.0)), hand.get(where, (0.0, 0.0))
            print(f"{s[1] - h[1]:+9.1f}  calls/op {s[0]:7.1f} vs {h[0]:7.1f}  {where}")


if __name__ == "__main__":
    main()

"""Start-up time of the local cloud: each emulator alone and all four at once.

    python -m benchmarks.localcloud            # warm: installs already in the cache
    python -m benchmarks.localcloud --cold     # first start: a new, empty cache dir

Each start runs ``python -m sessionstore.localcloud up`` in a private run directory
(so a cloud already running elsewhere is left alone; taken default ports are swapped
for free ones) until the emulator is healthy and its bucket exists, then ``down``.
Wall time depends on how busy the machine is, so the load average is printed and,
for a warm start, the CPU seconds the emulator process used to get ready (Linux), the
figure that does not change with the load. Warm figures are medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sessionstore.localcloud import EMULATORS, LocalCloud


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(names: list[str], run_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of ``up NAMES`` and the CPU seconds its emulators used; then down."""
    argv = [sys.executable, "-m", "sessionstore.localcloud"]
    where = ["--run-dir", str(run_dir), "-q"]
    started = time.perf_counter()
    subprocess.run([*argv, "up", *where, *names], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    cloud = LocalCloud(run_dir)
    cpu = sum(_cpu_seconds(pid) for e in EMULATORS if (pid := cloud.pid(e)) is not None)
    subprocess.run([*argv, "down", *where], env=env, check=True)
    return wall, cpu


def main() -> None:
    """Print the table of start-up times (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cold", action="store_true", help="install into an empty cache")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if args.cold:
            env["SESSIONSTORE_LOCALCLOUD_CACHE"] = str(Path(tmp) / "cache")
        print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        print("| start | emulators | wall s | emulator CPU s |\n| --- | --- | --- | --- |")
        if args.cold:
            wall, cpu = start([], Path(tmp) / "run", env)
            print(f"| first (installs) | all four | {wall:.1f} | {cpu:.1f} |")
        for names in [[e.name] for e in EMULATORS] + [[]]:
            runs = [start(names, Path(tmp) / "run", env) for _ in range(args.rounds)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"| warm | {' '.join(names) or 'all four'} | {wall:.1f} | {cpu:.1f} |")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

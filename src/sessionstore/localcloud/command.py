"""``python -m sessionstore.localcloud up|down|status|env`` (and ``sessionstore localcloud``).

Progress goes to stderr; stdout carries only ``export`` lines (values quoted with
:func:`shlex.quote`), so that ``eval "$(python -m sessionstore.localcloud up)"`` points
the SDKs at the emulators. They name only emulators of this cloud that run and answer.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from sessionstore.localcloud.cloud import (
    LocalCloud,
    LocalCloudError,
    UnwritableDirectoryError,
    export_lines,
    stderr_say,
)
from sessionstore.localcloud.emulators import EMULATORS, by_name

__all__ = ["main"]

_NAMES_HELP = "emulators (default: all): " + ", ".join(e.name for e in EMULATORS)
_EPILOG = (
    "emulators: "
    + ", ".join(f"{e.name} (port {e.default_port}, {e.port_env})" for e in EMULATORS)
    + ". A default port that is taken is swapped for a free one; a port set by its variable"
    " is not. Installs go to $SESSIONSTORE_LOCALCLOUD_CACHE (default"
    " ~/.cache/sessionstore/localcloud), state to $SESSIONSTORE_LOCALCLOUD_RUN (default"
    " <cache>/run)."
)


def _parser(prog: str) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run-dir", type=Path, help="state directory (pids, logs, data)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run LocalStack, fake-gcs-server, Azurite and moto on 127.0.0.1 "
        "without Docker, installed into a per-user cache.",
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up", parents=[common], help="start (installing on first use); print export lines"
    )
    up.add_argument("names", nargs="*", metavar="NAME", help=_NAMES_HELP)
    up.add_argument("--env", action="store_true", help="accepted for compatibility (no-op)")
    up.add_argument("--hold", type=int, metavar="PID", help="hold the emulators for process PID")
    down = commands.add_parser(
        "down", parents=[common], help="stop what this run directory started"
    )
    down.add_argument("names", nargs="*", metavar="NAME", help=_NAMES_HELP)
    down.add_argument(
        "--release", type=int, metavar="PID", help="drop PID's hold; stop what no one holds"
    )
    status = commands.add_parser(
        "status", parents=[common], help="state of each emulator; exit 0 if all healthy"
    )
    status.add_argument("names", nargs="*", metavar="NAME", help=_NAMES_HELP)
    env = commands.add_parser(
        "env",
        parents=[common],
        help="print the export lines of the emulators this cloud runs (starts nothing)",
    )
    env.add_argument(
        "--all",
        action="store_true",
        help="every emulator at its configured port, running or not (e.g. run with Docker)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m sessionstore.localcloud") -> int:
    """Run one command; returns the exit status (0 ok, 1 an emulator failed, 2 usage)."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    for name in getattr(args, "names", []):
        try:
            by_name(name)
        except ValueError as exc:
            parser.error(str(exc))
    cloud = LocalCloud(args.run_dir, say=None if args.quiet else stderr_say)
    try:
        if args.command == "up":
            try:
                cloud.up(args.names, holder=args.hold)
            finally:
                print(export_lines(cloud.exports(args.names)), end="", flush=True)
        elif args.command == "down":
            stopped = cloud.release(args.release) if args.release else cloud.down(args.names)
            cloud.say(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")
        elif args.command == "status":
            return _print_status(cloud, args.names)
        else:
            pairs = cloud.exports(running_or_not=args.all)
            if not pairs:
                cloud.say("no emulator of this local cloud is running: nothing to export")
            print(export_lines(pairs), end="")
    except UnwritableDirectoryError as exc:
        stderr_say(f"localcloud: error: {exc}")
        return 1
    except LocalCloudError as exc:
        for name, reason in exc.failures.items():
            stderr_say(f"localcloud: error: {name}: {reason}")
        return 1
    return 0


def _print_status(cloud: LocalCloud, names: list[str]) -> int:
    states = cloud.status(names)
    print(f"{'EMULATOR':<11} {'STATE':<22} {'PID':<8} {'PORT':<6} LOG")
    for s in states:
        pid = "-" if s.pid is None else str(s.pid)
        print(f"{s.emulator.name:<11} {s.state:<22} {pid:<8} {s.port:<6} {s.log}")
    return 0 if all(s.healthy for s in states) else 1

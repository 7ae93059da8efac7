"""The local stores (file, SQLite) against the same work by hand, through the sync API.

Each store saves and loads a snapshot one call at a time from the main thread (a
warm ``SyncSessionStore``, as a synchronous handler uses it), interleaved round by
round with what a user would write by hand on the same disk:

- file: ``json.dumps``, a temporary file, ``fsync``, ``os.replace``; ``json.loads`` of
  the file to load;
- SQLite: agentick's own statements (``INSERT ... ON CONFLICT DO UPDATE`` of
  ``json.dumps``; ``SELECT snapshot``) on a ``sqlite3`` connection in WAL mode, like
  for like with the store (which adds a version, a condition check and metadata).

CPU is the process's user+sys time per operation; the ratio is store / by hand per
round, its median in bold and the rounds' range in brackets. Requests do not apply: a
save is one transaction or one atomic rename. ``python -m benchmarks.local [--quick]``
rewrites the section of BENCHMARKS.md between its markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.serverless import Pairs, _batch
from benchmarks.snapshots import agentick_snapshot
from sessionstore import FileSessionStore, SyncSessionStore
from sessionstore.stores.sqlite import SQLiteSessionStore

START, END = "<!-- local-stores:start -->", "<!-- local-stores:end -->"
ROOT = Path(__file__).resolve().parent.parent
SIZES = {"10 KB": 10_000, "1 MB": 1_000_000}


class FileByHand:
    """Atomic JSON files, the way a careful user writes them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "w") as f:
            json.dump(snapshot, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / f"{session_id}.json")

    def load(self, session_id: str) -> Any:
        with open(self.root / f"{session_id}.json") as f:
            return json.load(f)

    def close(self) -> None:
        """Nothing to close."""


class SQLiteByHand:
    """agentick's statements on one connection (WAL, like the store)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS agentick_sessions (session_id TEXT PRIMARY KEY,"
            " snapshot TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)"
        )

    def save(self, session_id: str, snapshot: dict[str, Any]) -> None:
        now = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
        self.db.execute(
            "INSERT INTO agentick_sessions (session_id, snapshot, created_at, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET"
            " snapshot = excluded.snapshot, updated_at = excluded.updated_at",
            (session_id, json.dumps(snapshot), now, now),
        )

    def load(self, session_id: str) -> Any:
        row = self.db.execute(
            "SELECT snapshot FROM agentick_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return json.loads(row[0])

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


def _sides(kind: str, where: Path) -> tuple[SyncSessionStore, Any]:
    if kind == "file":
        (where / "hand").mkdir()
        return SyncSessionStore(FileSessionStore(where / "store")), FileByHand(where / "hand")
    store = SyncSessionStore(SQLiteSessionStore(where / "store.db"))
    return store, SQLiteByHand(where / "hand.db")


def measure(kind: str, rounds: int, ops: dict[str, int]) -> dict[str, Pairs]:
    """CPU per save and load of one local store (a) against by hand (b)."""
    cells: dict[str, Pairs] = {}
    with tempfile.TemporaryDirectory(prefix="sessionstore-bench-") as scratch:
        store, hand = _sides(kind, Path(scratch))
        sides: dict[str, Any] = {"store": store, "hand": hand}
        try:
            for size_name, size in SIZES.items():
                snapshot = agentick_snapshot(size)
                ids = [f"s{i}" for i in range(ops[size_name])]
                for side in sides.values():  # warm: connection open, files there
                    _batch(lambda i, side=side, snap=snapshot: side.save(i, snap), ids)
                save, load = Pairs(), Pairs()
                for rnd in range(rounds):
                    for name in ("store", "hand") if rnd % 2 == 0 else ("hand", "store"):
                        side, at = sides[name], (0 if name == "store" else 1)
                        calls: list[tuple[Pairs, Callable[[str], Any]]] = [
                            (save, lambda i, side=side, snap=snapshot: side.save(i, snap)),
                            (load, side.load),
                        ]
                        for pairs, call in calls:
                            (pairs.a, pairs.b)[at].append(_batch(call, ids))
                cells[f"save {size_name}"], cells[f"load {size_name}"] = save, load
        finally:
            store.close()
            hand.close()
    return cells


def section(results: dict[str, dict[str, Pairs]], rounds: int) -> list[str]:
    """The markdown of the section, markers included."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    lines = [
        START,
        "## Local stores",
        "",
        "The file store and the SQLite store through the sync API, one call at a time, against"
        " the same work by hand on the same disk (`benchmarks/local.py`): atomic JSON files"
        " (`json.dumps`, a temporary file, `fsync`, `os.replace`), and agentick's own"
        " `sqlite3` statements in WAL mode. Client CPU (user+sys) per operation; the store"
        " also checks the JSON, keeps a version and, for SQLite, checks it in a transaction.",
        "",
        f"Measured {when}, {rounds} rounds per cell, load average (1 min) {load:.1f}.",
        "",
        "| store | op | size | store CPU µs/op | by-hand CPU µs/op | CPU ratio (rounds' range) |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for kind, cells in results.items():
        for name, pairs in cells.items():
            op, size = name.split(" ", 1)
            median, low, high = pairs.ratio()
            a = sorted(pairs.a)[len(pairs.a) // 2]
            b = sorted(pairs.b)[len(pairs.b) // 2]
            lines.append(
                f"| {kind} | {op} | {size} | {a:,.0f} | {b:,.0f} |"
                f" **{median:.2f}** ({low:.2f}-{high:.2f}) |"
            )
    lines += ["", "Reproduce: `.venv/bin/python -m benchmarks.local`.", END]
    return lines


def splice(page: str, lines: list[str]) -> str:
    """``page`` with the section between the markers replaced (or added before Notes)."""
    text = "\n".join(lines)
    start, end = page.find(START), page.find(END)
    if start >= 0 and end >= 0:
        return page[:start] + text + page[end + len(END) :]
    notes = page.find("\n## Notes\n")
    return page[: notes + 1] + text + "\n" + page[notes:]


def run(quick: bool) -> tuple[dict[str, dict[str, Pairs]], int]:
    """Both local stores' cells and the rounds per cell (for :func:`section`)."""
    rounds = 2 if quick else 10
    ops = {"10 KB": 20, "1 MB": 4} if quick else {"10 KB": 100, "1 MB": 20}
    return {kind: measure(kind, rounds, ops) for kind in ("file", "sqlite")}, rounds


def main() -> None:
    """Measure both local stores and rewrite their section of BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer operations")
    args = parser.parse_args()
    path = ROOT / "BENCHMARKS.md"
    path.write_text(splice(path.read_text(), section(*run(args.quick))))
    print(f"wrote the Local stores section of {path}")


if __name__ == "__main__":
    main()

"""The ``sessionstore`` command: inspect, copy and migrate session stores by URL.

Every command takes store URLs as :func:`sessionstore.open_store` does (any scheme of
:mod:`sessionstore.registry`; ``sessionstore --help`` lists them). Exit codes: 0 ok;
1 some sessions failed or were not found; 2 a usage or configuration error (a bad id
or snapshot too); 3 access refused (credentials, missing bucket); 4 the store is
unavailable.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from sessionstore.demo import run_demo
from sessionstore.errors import SessionStoreError
from sessionstore.exitcodes import exit_code

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sessionstore`` command; returns the exit code.

    Without the ``cli`` extra (click) only ``demo [URL]`` runs; anything else exits 2
    with the install command.
    """
    try:
        from sessionstore.commands import cli
    except ImportError as exc:
        if exc.name != "click":
            raise
        args = list(sys.argv[1:] if argv is None else argv)
        if args[:1] == ["demo"] and len(args) <= 2 and not any(a.startswith("-") for a in args):
            return _demo_without_click(args[1] if len(args) == 2 else None)
        print(
            "sessionstore: error: the command needs click: pip install 'sessionstore[cli]'"
            " (only `demo [URL]` runs without it)",
            file=sys.stderr,
        )
        return 2
    try:
        cli(args=argv, prog_name="sessionstore", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def _demo_without_click(url: str | None) -> int:
    try:
        asyncio.run(run_demo(url))
    except SessionStoreError as exc:
        print(f"sessionstore: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    return 0

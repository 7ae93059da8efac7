"""Peak memory of the code under test, traced in a process of its own.

tracemalloc counts the allocations of every thread of a process: traced in the test
process, other tests' leftover threads (event loops, SDK pools) would count with the
code under test. So the measured work runs in a fresh interpreter, started by
:func:`run_traced`, where it is all there is; it measures with :class:`Traced`.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from types import TracebackType
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]


class Traced:
    """Traces the allocations inside a ``with`` block (sync or async code).

    ``peak`` is the most bytes allocated at once inside the block; ``raised`` the
    name of the exception that ended it ("" if none), which the block swallows.
    """

    peak = 0
    raised = ""

    def __enter__(self) -> Traced:
        tracemalloc.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.raised = "" if kind is None else kind.__name__
        return kind is not None and issubclass(kind, Exception)


def run_traced(work: str, payload: bytes, timeout: float = 300) -> Any:
    """Run ``work`` ("tests.module:function") on ``payload`` in a fresh interpreter.

    The function takes the payload (bytes), measures with :class:`Traced`, and returns
    what JSON can carry back; its result is returned here.
    """
    run = subprocess.run(
        [sys.executable, "-m", "tests.tracedpeak", work],
        input=payload,
        capture_output=True,
        cwd=_ROOT,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    return json.loads(run.stdout)


def _main(work: str) -> None:
    module, name = work.split(":")
    function = getattr(importlib.import_module(module), name)
    result = function(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    _main(sys.argv[1])

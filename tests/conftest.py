"""Fixtures shared by the contract suite (the emulator fixtures come from
``sessionstore.testing``, loaded as a pytest plugin)."""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sessionstore import ObjectSessionStore
from tests.contract import MakeStore

pytest_plugins = ["pytester"]

# scripts/mutate runs the fast tests once per mutant, on a loaded machine: the same
# examples every run (a kill must not depend on luck), no time limits.
settings.register_profile(
    "mutate",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Every run: no per-example time limit and no "too slow" health check. Both are timed
# assertions, and the suite runs beside emulators on a shared 2-core machine.
settings.register_profile(
    "default-untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default-untimed")


#: Whether mutmut runs these tests (its trampoline in the mutated package imports it):
#: the hooks below then speed up its run per mutant, and change nothing otherwise.
UNDER_MUTMUT = "mutmut" in sys.modules


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under mutmut, freeze what collection built (gc.freeze).

    mutmut forks one pytest run per mutant from a process that has imported and
    collected the tests; pytest ends each run with two full garbage collections, which
    would walk (and copy, page by page) that whole inherited heap: ~0.3 s of each
    mutant's ~0.5 s of overhead.
    """
    if UNDER_MUTMUT:
        gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, run a mutant's tests fastest first, each with a timeout of its own.

    mutmut stops a mutant's run at its first failing test (``-x``) but hands pytest the
    tests in no particular order; most mutants are killed by a fast test, so running
    those first ends most runs sooner. A mutant that makes a test hang (an endless loop)
    is detected when the test takes five times as long as it did unmutated, at least
    3 s, instead of waiting out the run's whole ``--timeout``. The durations are
    mutmut's own, measured in its first run (``mutmut-stats.json`` in its working
    directory, ``mutants/``); a test's own timeout marker still wins.
    """
    if not UNDER_MUTMUT:
        return
    durations = _mutmut_durations()
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
    for item in items:
        if item.nodeid in durations:
            item.add_marker(pytest.mark.timeout(max(3.0, 5 * durations[item.nodeid])))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under mutmut, a run that has failed a test ends within 5 s, whatever it waits for.

    A mutant can leave a thread blocked for good (a loop thread that never starts): the
    test fails at its timeout, but the teardown that follows (pytest-asyncio's runner
    joining its executor) waits for that thread, outside any test's timeout. The run
    has already killed the mutant; its exit status says so (1, tests failed).
    """
    global _watchdog
    if UNDER_MUTMUT and report.failed and _watchdog is None:
        _watchdog = threading.Timer(5.0, os._exit, args=(1,))
        _watchdog.daemon = True
        _watchdog.start()


def pytest_unconfigure() -> None:
    """The run ended by itself: no watchdog may outlive it (mutmut's own process)."""
    global _watchdog
    if _watchdog is not None:
        _watchdog.cancel()
        _watchdog = None


_watchdog: threading.Timer | None = None
_durations: dict[str, float] = {}


def _mutmut_durations() -> dict[str, float]:
    """mutmut's test durations, read once (none before its first run has measured them)."""
    if not _durations:
        try:
            stats = json.loads(Path("mutmut-stats.json").read_bytes())
        except FileNotFoundError:
            return {}
        _durations.update(stats["duration_by_test"])
    return _durations


if UNDER_MUTMUT:  # mutmut's trampoline adds frames to every call of a mutant
    sys.setrecursionlimit(10_000)


@pytest.fixture
def store(make_store: MakeStore) -> ObjectSessionStore:
    """A store with default options on the test's backend and prefix."""
    return make_store()

"""A time budget for the store calls of one invocation (both APIs).

A serverless function has a fixed time budget (Lambda's
``context.get_remaining_time_in_millis()``); a store call that keeps retrying past it
gets the function killed mid-invocation. :func:`deadline` caps the total time of every
store call made inside its block, retries and backoff waits included::

    with sessionstore.deadline(context.get_remaining_time_in_millis() / 1000 - 1):
        session = store.load("s1")          # sync API, or `await store.load(...)`
        store.save("s1", session)

Inside the block, no retry starts whose backoff wait would end past the deadline (a
tenacity stop condition, beside the store's own :class:`RetryPolicy`), and a request
still running at the deadline is cut off. Either way the call raises
:class:`StoreUnavailableError` in time. A cut-off write may or may not have landed, as
with any lost response: use ``if_version`` or ``reject_stale`` to make the retry safe.

The deadline is a context variable: it follows the code into the tasks it starts and
into the calls of a :class:`SyncSessionStore`, and nested blocks keep the earlier end.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar

from tenacity import RetryCallState
from tenacity.stop import stop_base

from sessionstore.errors import StoreConfigError

__all__ = ["deadline", "remaining"]

#: The monotonic time at which the current block's budget ends, if any.
_END: ContextVar[float | None] = ContextVar("sessionstore_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Cap the total time of the store calls made inside the ``with`` block.

    Works in synchronous and asynchronous code alike (it is a plain ``with``). Nested
    blocks keep whichever end comes first.

    Raises:
        StoreConfigError: ``seconds`` is not a finite number (a budget of zero or less
            is allowed: every store call inside then fails at once).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise StoreConfigError(f"deadline() takes a number of seconds, not {seconds!r}")
    if not math.isfinite(seconds):
        raise StoreConfigError(f"deadline() takes a finite number of seconds, not {seconds!r}")
    end = time.monotonic() + seconds
    current = _END.get()
    token = _END.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _END.reset(token)


def remaining() -> float | None:
    """Seconds left in the current :func:`deadline` block (None outside any block)."""
    end = _END.get()
    return None if end is None else end - time.monotonic()


class DeadlinePassed(Exception):
    """Internal: the caller's deadline ended a store call (mapped by the base)."""


class stop_at_deadline(stop_base):  # named like tenacity's own stop conditions
    """Tenacity stop condition: stop when the next wait would end past the deadline."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        end = _END.get()
        return end is not None and time.monotonic() + retry_state.upcoming_sleep >= end


@contextlib.asynccontextmanager
async def attempt_budget() -> AsyncIterator[None]:
    """Run one attempt within what is left of the deadline.

    Raises:
        DeadlinePassed: the deadline has passed, before or during the attempt.
    """
    left = remaining()
    if left is None:
        yield
        return
    if left <= 0:
        raise DeadlinePassed
    try:
        async with asyncio.timeout(left) as scope:
            yield
    except TimeoutError:
        if scope.expired():
            raise DeadlinePassed from None
        raise

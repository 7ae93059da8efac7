"""The call layer: every request of an operation passes through it exactly once.

:meth:`CallLayer._translated` is the one edge where SDK exceptions become the faults of
:mod:`sessionstore.provider` (each primitive call is wrapped in it once);
:meth:`CallLayer._call` runs an operation's attempts under the retry policy and the
caller's deadline, logs them, and maps what escapes onto the public error tree
(docs/DESIGN.md, "Layers" and "Errors").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import NoReturn, TypeVar

from sessionstore.deadline import DeadlinePassed, attempt_budget, remaining
from sessionstore.errors import (
    ConflictError,
    SessionStoreError,
    StoreAccessError,
    StoreUnavailableError,
)
from sessionstore.keys import make_key
from sessionstore.provider import (
    AccessDenied,
    Fault,
    NotFound,
    ObjectInfo,
    PreconditionFailed,
    Primitives,
    StoredObject,
    Transient,
    redact,
)
from sessionstore.retry import RetryPolicy

__all__ = ["CallLayer", "cause"]

_log = logging.getLogger("sessionstore")
T = TypeVar("T")


class CallLayer(Primitives):
    """Translation, retries, deadline, logging and error mapping of every request."""

    retry: RetryPolicy
    ttl: timedelta | None

    async def _ensure_open(self) -> None:
        """Open the running call's client if needed (the lifecycle layer's job)."""

    async def _translated(self, call: Awaitable[T]) -> T:
        """Await one primitive call; an SDK error leaves as a fault, chained to it.

        The one place where SDK exceptions are sorted (docs/DESIGN.md, "Errors").
        """
        try:
            return await call
        except SessionStoreError:  # a fault, or a public error raised on purpose
            raise
        except Exception as exc:
            raise self._classify(exc)(redact(self._error_detail(exc))) from exc

    async def _call(self, op: str, key: str | None, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` (translated primitive calls) under the retry policy.

        A failed condition and a missing object leave as their faults, for the caller
        to say what they mean; every other fault becomes a public error.
        """
        what = self._what(op, key)
        number = 0
        started = time.monotonic()
        try:
            async with attempt_budget():  # opening a client is within the deadline too
                await self._ensure_open()
            async for state in self.retry.retrying(Transient, lambda: what):
                with state:
                    number = state.retry_state.attempt_number
                    async with attempt_budget():  # the caller's sessionstore.deadline()
                        result = await attempt()
                    elapsed = (time.monotonic() - started) * 1000
                    _log.debug("sessionstore: %s ok (attempt %d, %.1f ms)", what, number, elapsed)
                    return result
        except (NotFound, PreconditionFailed) as fault:
            # For the caller to interpret; one it does not still reads as a public error.
            fault.attempts = number
            fault.args = (f"{what} failed ({fault.detail})",)
            raise
        except (DeadlinePassed, Fault) as exc:
            self._raise_public_error(what, number, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_public_error(self, what: str, number: int, exc: DeadlinePassed | Fault) -> NoReturn:
        """Raise the public error of what ended an operation's attempts."""
        if isinstance(exc, DeadlinePassed):
            when = f"on attempt {number}" if number else "while opening its client"
            raise StoreUnavailableError(
                f"{what} ran out of the caller's deadline (sessionstore.deadline) {when};"
                " a cut-off write may or may not have landed"
            ) from exc
        if isinstance(exc, Transient):
            within = "" if remaining() is None else " within the caller's deadline"
            raise StoreUnavailableError(
                f"{what} failed after {number} attempt(s){within} ({exc.detail});"
                " the store is unavailable"
            ) from cause(exc)
        if isinstance(exc, AccessDenied):
            raise StoreAccessError(
                f"{what} was refused ({exc.detail}): check the credentials and that"
                f" {self.location} exists"
            ) from cause(exc)
        raise SessionStoreError(f"{what} failed ({exc.detail})") from cause(exc)

    async def _unless_missing(self, read: Awaitable[T]) -> T | None:
        """What ``read`` returns, or None if the object is not there."""
        try:
            return await read
        except NotFound:
            return None

    async def _head_or_none(self, key: str) -> ObjectInfo | None:
        """One HEAD under the retry policy; None if absent."""
        return await self._unless_missing(
            self._call("head", key, lambda: self._translated(self._head(key)))
        )

    async def _get_or_none(self, key: str) -> StoredObject | None:
        """One GET under the retry policy; None if absent."""
        return await self._unless_missing(
            self._call("load", key, lambda: self._translated(self._get(key)))
        )

    async def _head_once(self, key: str) -> ObjectInfo | None:
        """One HEAD without retries (inside an attempt); None if absent."""
        return await self._unless_missing(self._translated(self._head(key)))

    # ------------------------------------------------------------------ addressing

    def _key(self, session_id: str) -> str:
        """The key of ``session_id``; InvalidSessionIdError if it does not fit."""
        return make_key(self.prefix, session_id)

    def _what(self, op: str, key: str | None) -> str:
        return f"{self.provider} {op} {self._where(key) if key else self.location}"

    def _conflict(self, op: str, key: str, why: str) -> ConflictError:
        return ConflictError(f"{self.provider} {op} {self._where(key)}: {why}")

    def _missing_store(self, op: str, key: str) -> StoreAccessError:
        return StoreAccessError(
            f"{self.provider} {op} {self._where(key)}: {self.location} does not exist"
        )

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _expired(self, last_modified: datetime | None) -> bool:
        if self.ttl is None or last_modified is None:
            return False
        return self._now() - last_modified > self.ttl


def cause(fault: Fault) -> BaseException:
    """The SDK exception behind a fault (the fault itself if a primitive raised it)."""
    return fault.__cause__ or fault

"""Retry policy as typed data, turned into tenacity (docs/DESIGN.md, "Retries").

tenacity in the base class is the one owner of retries: every provider switches its
SDK's own retries off, or attempts would multiply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from sessionstore.deadline import stop_at_deadline
from sessionstore.urlparams import ATTEMPTS, DELAY, TIMEOUT

__all__ = ["RetryPolicy"]

_log = logging.getLogger("sessionstore")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried: full-jitter exponential backoff.

    Attributes:
        attempts: total attempts, the first included (1 = no retry); 1..1000000.
        base_delay: seconds; attempt n waits a random time in [0, base_delay * 2**n].
        max_delay: cap of one wait, in seconds (both delays 0..3600).
        deadline: seconds (> 0 and <= 3600) from the first attempt after which no new
            attempt starts.

    Only failures the provider classifies as transient (throttling, 5xx, timeouts,
    connection resets) are retried; every other error fails on the first attempt.

    Raises:
        StoreConfigError: a value is out of range or of the wrong type (a bool is not
            a count or a number of seconds, NaN is not a number).
    """

    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float = 20.0

    def __post_init__(self) -> None:
        # A bool is an int to Python, but True is no count and no number of seconds;
        # the ranges are the URL's (retry_attempts, retry_deadline).
        ATTEMPTS.check("RetryPolicy.attempts", self.attempts)
        DELAY.check("RetryPolicy.base_delay", self.base_delay)
        DELAY.check("RetryPolicy.max_delay", self.max_delay)
        TIMEOUT.check("RetryPolicy.deadline", self.deadline)

    def retrying(self, transient: type[BaseException], what: Callable[[], str]) -> AsyncRetrying:
        """Build the tenacity loop for one operation: it retries ``transient`` errors.

        ``what()`` names the operation in log lines.
        """

        def log_retry(state: RetryCallState) -> None:
            failure = state.outcome and state.outcome.exception()
            cause = getattr(failure, "__cause__", None) or failure  # the SDK's exception
            _log.warning(
                "sessionstore: %s failed on attempt %d (%s); retrying",
                what(),
                state.attempt_number,
                type(cause).__name__,
            )

        return AsyncRetrying(
            stop=(
                stop_after_attempt(self.attempts)
                | stop_before_delay(self.deadline)
                | stop_at_deadline()  # the caller's sessionstore.deadline() block, if any
            ),
            wait=wait_random_exponential(multiplier=self.base_delay, max=self.max_delay),
            retry=retry_if_exception_type(transient),
            before_sleep=log_retry,
            reraise=True,
        )

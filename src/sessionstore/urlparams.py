"""Converters of URL query values, and the query parameters every store takes.

A store declares its own parameters next to its constructor
(``url_params = {"timeout": TIMEOUT, ...}``); :func:`sessionstore.open_store` adds
these common ones. A converter raises ValueError with what it expected, never with
the value (it may be a secret). Every numeric parameter is a :class:`Bounded` range,
whose ``check`` the store's constructor applies to the same keyword argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sessionstore.errors import StoreConfigError

__all__ = [
    "ATTEMPTS",
    "COMMON",
    "COMPRESS_MIN_BYTES",
    "DELAY",
    "POOL",
    "SESSIONS",
    "SNAPSHOT_BYTES",
    "TIMEOUT",
    "TTL",
    "Bounded",
    "Duration",
    "UrlParams",
    "boolean",
    "compression",
    "text",
]

T = TypeVar("T")

#: What a store declares as ``url_params``: query name -> converter.
UrlParams = Mapping[str, Callable[[str], Any]]


def boolean(value: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off)."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parsed(convert: Callable[[str], T], value: str, expected: str) -> T:
    """``convert(value)``, or ValueError saying what was expected (never the value)."""
    try:
        return convert(value)
    except (ValueError, OverflowError):
        raise ValueError(f"expected {expected}") from None


@dataclass(frozen=True, slots=True)
class Bounded:
    """A numeric parameter's type and allowed range: a URL converter and a keyword check.

    Every numeric parameter has one (docs/DESIGN.md, "Configuration"), so an absurd
    value (``read_timeout=1e300``) is refused when the store is built, not by every
    call after. ``low`` is excluded with ``low_open``; ``high`` is always included.
    """

    integer: bool
    low: float
    high: float
    low_open: bool = False
    unit: str = ""

    @property
    def allowed(self) -> str:
        """The range in words: ``an int in 1..1024``, ``a number of seconds > 0 and <= 3600``."""
        low, high = _shown(self.low), _shown(self.high)
        if self.integer:
            return f"an int in {low}..{high}"
        unit = f" of {self.unit}" if self.unit else ""
        return f"a number{unit} {'>' if self.low_open else '>='} {low} and <= {high}"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a number of the right type in the range (no bool, no NaN)."""
        kinds = int if self.integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return bool(above and value <= self.high)  # NaN compares false: refused

    def __call__(self, value: str) -> Any:
        """Convert a URL query value.

        Raises:
            ValueError: not a number in the range (the message says which range, never
                the value).
        """
        number = _parsed(int if self.integer else float, value, self.allowed)
        if not self.accepts(number):
            raise ValueError(f"expected {self.allowed}")
        return number

    def check(self, name: str, value: object) -> None:
        """Check a keyword argument.

        Raises:
            StoreConfigError: ``value`` is not a number in the range (``name`` and the
                range are in the message).
        """
        if not self.accepts(value):
            raise StoreConfigError(f"{name} must be {self.allowed}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Duration(Bounded):
    """A :class:`Bounded` number of seconds that converts to a ``timedelta``."""

    @property
    def allowed(self) -> str:
        """The range in words, with the upper bound in days."""
        return f"{Bounded.allowed.__get__(self)} ({_shown(self.high / 86400)} days)"

    def __call__(self, value: str) -> timedelta:
        """Convert a URL query value to a ``timedelta``.

        Raises:
            ValueError: not a number of seconds in the range.
        """
        return timedelta(seconds=Bounded.__call__(self, value))


def _shown(number: float) -> str:
    """``number`` as written in a message: 3600, 0.5, 5368709120."""
    return str(int(number)) if float(number).is_integer() else repr(number)


#: Seconds a request, a connection or the retries of one operation may take: > 0, at
#: most an hour (a bigger value overflowed the SDKs' socket timeouts on every call).
TIMEOUT = Bounded(integer=False, low=0, high=3600, low_open=True, unit="seconds")
#: Seconds of one retry wait (RetryPolicy.base_delay, max_delay).
DELAY = Bounded(integer=False, low=0, high=3600, unit="seconds")
#: Connections of an HTTP pool, threads of a worker pool.
POOL = Bounded(integer=True, low=1, high=1024)
#: Attempts of one operation, the first included.
ATTEMPTS = Bounded(integer=True, low=1, high=1_000_000)
#: Bytes of a snapshot: at most 5 GiB, the largest object one S3 PUT writes.
SNAPSHOT_BYTES = Bounded(integer=True, low=1, high=5 * 2**30)
#: The smallest body worth compressing, in bytes.
COMPRESS_MIN_BYTES = Bounded(integer=True, low=0, high=5 * 2**30)
#: Sessions a memory store keeps.
SESSIONS = Bounded(integer=True, low=1, high=10**9)
#: A ttl in seconds: > 0, under timedelta's limit of 999999999 days.
TTL = Duration(integer=False, low=0, high=999_999_999 * 86400, low_open=True, unit="seconds")


def compression(value: str) -> str | None:
    """``gzip``, ``zstd``, or ``none`` (or empty) for no compression."""
    if value in ("", "none"):
        return None
    if value not in ("gzip", "zstd"):
        raise ValueError("expected gzip, zstd or none")
    return value


def text(value: str) -> str:
    """A non-empty string."""
    if not value:
        raise ValueError("expected a value")
    return value


#: The parameters of every store URL (``retry_*`` build a RetryPolicy).
COMMON: UrlParams = {
    "prefix": str,
    "compression": compression,
    "compress_min_bytes": COMPRESS_MIN_BYTES,
    "max_snapshot_bytes": SNAPSHOT_BYTES,
    "ttl": TTL,
    "reject_stale": boolean,
    "retry_attempts": ATTEMPTS,
    "retry_deadline": TIMEOUT,
}

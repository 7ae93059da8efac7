"""Converters of URL query values, and the query parameters every store takes.

A store declares its own parameters next to its constructor
(``url_params = {"timeout": seconds, ...}``); :func:`sessionstore.open_store` adds
these common ones. A converter raises ValueError with what it expected, never with
the value (it may be a secret).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

__all__ = [
    "COMMON",
    "UrlParams",
    "boolean",
    "compression",
    "non_negative_int",
    "positive_int",
    "seconds",
    "text",
    "ttl",
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


def positive_int(value: str) -> int:
    """An integer > 0."""
    number = _parsed(int, value, "a positive integer")
    if number <= 0:
        raise ValueError("expected a positive integer")
    return number


def non_negative_int(value: str) -> int:
    """An integer >= 0."""
    number = _parsed(int, value, "an integer >= 0")
    if number < 0:
        raise ValueError("expected an integer >= 0")
    return number


def seconds(value: str) -> float:
    """A positive, finite number of seconds."""
    number = _parsed(float, value, "a positive number of seconds")
    if not 0 < number < math.inf:
        raise ValueError("expected a positive, finite number of seconds")
    return number


def ttl(value: str) -> timedelta:
    """A positive number of seconds, as a timedelta (under 999999999 days)."""
    return _parsed(
        lambda text: timedelta(seconds=seconds(text)),
        value,
        f"a positive number of seconds, under {timedelta.max.days} days",
    )


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
    "compress_min_bytes": non_negative_int,
    "max_snapshot_bytes": positive_int,
    "ttl": ttl,
    "reject_stale": boolean,
    "retry_attempts": positive_int,
    "retry_deadline": seconds,
}

"""open_store(url): pick and configure a store from a URL (DESIGN §2).

::

    s3://bucket/some/prefix/?region=eu-west-1&endpoint_url=http://127.0.0.1:4566
    gs://bucket/some/prefix/?project=my-project
    az://container/some/prefix/?account_url=https://acct.blob.core.windows.net  (or azure://)
    file:///var/lib/agent/sessions     file:relative/dir
    memory://

Provider modules are imported only when their scheme is opened, so ``import
sessionstore`` loads no cloud SDK. Every problem raises :class:`StoreConfigError` with
the fix in its message; URL query values are never echoed (they could be secrets).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sessionstore.errors import StoreConfigError
from sessionstore.retry import RetryPolicy

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = ["DEFAULT_URL", "ENV_VAR", "open_store"]

ENV_VAR = "SESSIONSTORE_URL"
DEFAULT_URL = "file:.sessions"


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("expected a positive number of seconds")
    return value


def _ttl(text: str) -> timedelta:
    return timedelta(seconds=_seconds(text))


def _compression(text: str) -> str | None:
    if text in ("", "none"):
        return None
    if text not in ("gzip", "zstd"):
        raise ValueError("expected gzip, zstd or none")
    return text


def _text(text: str) -> str:
    if not text:
        raise ValueError("expected a value")
    return text


_COMMON: dict[str, Callable[[str], Any]] = {
    "prefix": str,
    "compression": _compression,
    "compress_min_bytes": _non_negative_int,
    "max_snapshot_bytes": _positive_int,
    "ttl": _ttl,
    "reject_stale": _bool,
    "retry_attempts": _positive_int,
    "retry_deadline": _seconds,
}


@dataclass(frozen=True)
class _Scheme:
    module: str  # under sessionstore.stores
    cls: str
    extra: str | None  # the pip extra that brings the SDK
    location: str | None  # constructor argument filled from the URL's host part
    params: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    renames: Mapping[str, str] = field(default_factory=dict)  # query name -> keyword


_S3 = _Scheme(
    "s3",
    "S3SessionStore",
    "s3",
    "bucket",
    {
        "region": _text,
        "region_name": _text,
        "endpoint_url": _text,
        "sse": _text,
        "sse_kms_key_id": _text,
        "max_pool_connections": _positive_int,
        "connect_timeout": _seconds,
        "read_timeout": _seconds,
    },
    {"region": "region_name"},
)
_GCS = _Scheme(
    "gcs",
    "GCSSessionStore",
    "gcs",
    "bucket",
    {
        "project": _text,
        "kms_key_name": _text,
        "max_workers": _positive_int,
        "timeout": _seconds,
    },
)
_AZURE = _Scheme(
    "azure",
    "AzureBlobSessionStore",
    "azure",
    "container",
    {"account_url": _text, "encryption_scope": _text},
)
_SCHEMES: dict[str, _Scheme] = {
    "s3": _S3,
    "gs": _GCS,
    "gcs": _GCS,
    "az": _AZURE,
    "azure": _AZURE,
    "file": _Scheme("file", "FileSessionStore", None, None),
    "memory": _Scheme("memory", "MemorySessionStore", None, None, {"max_size": _positive_int}),
}


def _safe(url: str) -> str:
    """The URL without its query (values there may be secrets)."""
    return url.split("?", 1)[0]


def open_store(url: str | None = None, **options: Any) -> ObjectSessionStore:
    """Build the store a URL names; keyword options override query parameters.

    With no URL, ``$SESSIONSTORE_URL`` is used, else ``file:.sessions`` (a directory
    in the working directory: the embedded default, no server needed).

    Raises:
        StoreConfigError: unknown scheme, bad or unknown parameter, missing bucket
            name, or the provider's extra is not installed (the message says what to
            ``pip install``).
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_URL
    if not isinstance(url, str):
        raise StoreConfigError(f"store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        known = ", ".join(f"{name}://" for name in _SCHEMES)
        raise StoreConfigError(f"unknown store URL scheme in {_safe(url)!r}; use one of: {known}")

    kwargs = _query_options(url, parts.query, scheme)
    path = unquote(parts.path)
    if scheme.module == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreConfigError(
                f"file URL {_safe(url)!r} names host {parts.netloc!r}; use file:///abs/path"
                " or file:relative/path"
            )
        if not path:
            raise StoreConfigError(f"file URL {_safe(url)!r} has no directory")
        args: tuple[Any, ...] = (path,)
    elif scheme.location is not None:
        if not parts.netloc:
            raise StoreConfigError(
                f"store URL {_safe(url)!r} names no {scheme.location}:"
                f" use {parts.scheme}://{scheme.location.upper()}/prefix/"
            )
        args = (unquote(parts.netloc),)
        if path.strip("/") and "prefix" not in kwargs:
            kwargs["prefix"] = path.lstrip("/")
    else:
        if parts.netloc or path.strip("/"):
            raise StoreConfigError(f"{parts.scheme}:// takes no location, got {_safe(url)!r}")
        args = ()

    kwargs.update(options)
    return _construct(scheme, url, args, kwargs)


def _query_options(url: str, query: str, scheme: _Scheme) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    allowed = {**_COMMON, **scheme.params}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise StoreConfigError(f"store URL {_safe(url)!r} has a malformed query") from exc
    for name, raw in pairs:
        convert = allowed.get(name)
        if convert is None:
            raise StoreConfigError(
                f"unknown parameter {name!r} in {_safe(url)!r}; {scheme.cls} takes: "
                + ", ".join(sorted(allowed))
            )
        target = scheme.renames.get(name, name)
        if target in kwargs:
            raise StoreConfigError(f"parameter {name!r} is given twice in {_safe(url)!r}")
        try:
            kwargs[target] = convert(raw)
        except ValueError as exc:
            raise StoreConfigError(
                f"bad value for parameter {name!r} in {_safe(url)!r}: {exc}"
            ) from None
    attempts = kwargs.pop("retry_attempts", None)
    deadline = kwargs.pop("retry_deadline", None)
    if attempts is not None or deadline is not None:
        defaults = RetryPolicy()
        kwargs["retry"] = RetryPolicy(
            attempts=attempts or defaults.attempts,
            base_delay=defaults.base_delay,
            max_delay=defaults.max_delay,
            deadline=deadline or defaults.deadline,
        )
    return kwargs


def _construct(
    scheme: _Scheme, url: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ObjectSessionStore:
    try:
        module = importlib.import_module(f"sessionstore.stores.{scheme.module}")
    except ImportError as exc:
        if scheme.extra is None or (exc.name or "").startswith("sessionstore"):
            raise
        raise StoreConfigError(
            f"{_safe(url)!r} needs the {scheme.extra} extra ({exc.name} is not installed):"
            f" pip install 'sessionstore[{scheme.extra}]'"
        ) from exc
    cls = getattr(module, scheme.cls)
    try:
        store: ObjectSessionStore = cls(*args, **kwargs)
    except TypeError as exc:
        raise StoreConfigError(f"bad option for {scheme.cls}: {exc}") from exc
    return store

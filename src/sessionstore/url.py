"""open_store(url): pick and configure a store from a URL (docs/DESIGN.md, "Configuration").

A store URL is ``<scheme>://<location>/<prefix>/?<parameter>=<value>&...``: the scheme
picks the store class from :mod:`sessionstore.registry` (:func:`scheme_list
<sessionstore.registry.scheme_list>` names them all, ``sessionstore --help`` prints
them, the README shows one URL of each built-in store), and the class says which query
parameters it takes and what the URL's host and path mean. Provider modules are
imported only when their scheme is opened, so ``import sessionstore`` loads no cloud
SDK. Every problem raises :class:`StoreConfigError` with the fix in its message; URL
query values are never echoed (they could be secrets).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from sessionstore.errors import StoreConfigError
from sessionstore.registry import PROVIDERS, scheme_list
from sessionstore.retry import RetryPolicy
from sessionstore.urlparams import COMMON

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = ["DEFAULT_URL", "ENV_VAR", "open_store"]

ENV_VAR = "SESSIONSTORE_URL"
DEFAULT_URL = "file:.sessions"


def _safe(url: str) -> str:
    """The URL without its query and fragment (values there may be secrets)."""
    return url.split("?", 1)[0].split("#", 1)[0]


def open_store(url: str | None = None, **options: Any) -> ObjectSessionStore:
    """Build the store a URL names; keyword options override query parameters.

    With no URL, ``$SESSIONSTORE_URL`` is used, else ``file:.sessions`` (a directory
    in the working directory: the embedded default, no server needed).

    Raises:
        StoreConfigError: unknown scheme, bad or unknown parameter, a number out of
            its range, missing bucket name, user information (``user:password@``) in
            the URL, or the provider's extra is not installed (the message says what
            to ``pip install``).
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_URL
    if not isinstance(url, str):
        raise StoreConfigError(f"store URL must be a str, not {type(url).__name__}")
    parts = _split(url)
    if "#" in url:  # file:/tmp/my#sessions would silently open /tmp/my
        raise StoreConfigError(
            f"store URL {_safe(url)!r} has a '#' fragment, which names no store:"
            " write a '#' in a path or prefix as %23"
        )
    provider = PROVIDERS.get(parts.scheme.lower())
    if provider is None:
        raise StoreConfigError(
            f"unknown store URL scheme in {_safe(url)!r}; use one of: {scheme_list()}"
        )
    cls = provider.load(repr(_safe(url)))
    args, kwargs = cls._url_arguments(
        parts.scheme, unquote(parts.netloc), unquote(parts.path), _safe(url)
    )
    kwargs.update(_query_options(url, parts.query, cls))
    kwargs.update(options)
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise StoreConfigError(f"bad option for {cls.__name__}: {exc}") from exc


def _split(url: str) -> SplitResult:
    """``urlsplit(url)``, refusing user information (``user:password@host``).

    Credentials never ride in a store URL: they would be taken for the bucket name
    and shown in every message and ``repr``. Neither this message nor its exception
    chain holds the URL's host part.

    Raises:
        StoreConfigError: the URL does not parse, or it carries user information.
    """
    try:
        parts: SplitResult | None = urlsplit(url)
    except ValueError:  # its message may quote the host part: raised outside this block
        parts = None
    if parts is None:
        raise StoreConfigError(
            "store URL does not parse: check the brackets and characters of its host part"
            " (not shown: it may hold credentials)"
        )
    if "@" in unquote(parts.netloc):
        provider = PROVIDERS.get(parts.scheme.lower())
        hint = provider.credentials if provider else "use the SDK's own credential chain"
        raise StoreConfigError(
            f"the {parts.scheme}:// store URL carries user information (a name or password"
            " before '@', not shown here), which sessionstore never reads: " + hint
        )
    return parts


def _query_options(url: str, query: str, cls: type[ObjectSessionStore]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    allowed = {**COMMON, **cls.url_params}
    try:
        pairs: list[tuple[str, str]] | None = parse_qsl(
            query, keep_blank_values=True, strict_parsing=bool(query)
        )
    except ValueError:  # its message quotes the query: raised outside this block
        pairs = None
    if pairs is None:
        raise StoreConfigError(f"store URL {_safe(url)!r} has a malformed query")
    for name, raw in pairs:
        convert = allowed.get(name)
        if convert is None:
            raise StoreConfigError(
                f"unknown parameter {name!r} in {_safe(url)!r}; {cls.__name__} takes: "
                + ", ".join(sorted(allowed))
            )
        target = cls.url_aliases.get(name, name)
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
            attempts=attempts or defaults.attempts, deadline=deadline or defaults.deadline
        )
    return kwargs

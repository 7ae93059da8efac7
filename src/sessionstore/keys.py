"""Session id <-> object key (docs/DESIGN.md, "Storage format").

A key is ``prefix + encode(session_id) + ".json"``. ``encode`` percent-encodes every
byte of the UTF-8 id outside ``A-Z a-z 0-9 - _ . ~``, and also ``.`` and ``..`` when
they are the whole id, so no id can produce a key outside the prefix.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

from sessionstore.errors import InvalidSessionIdError, StoreConfigError

__all__ = ["MAX_KEY_BYTES", "SUFFIX", "decode_key", "encode_id", "make_key", "normalize_prefix"]

SUFFIX = ".json"
MAX_KEY_BYTES = 1024
_SAFE = "-_.~"  # with ASCII letters and digits, which quote() never encodes


def normalize_prefix(prefix: str) -> str:
    """Return ``prefix`` ending in ``/`` (unless empty), without a leading ``/``.

    Raises:
        StoreConfigError: the prefix is not a str, holds ``.``/``..`` segments, empty
            segments or control characters.
    """
    if not isinstance(prefix, str):
        raise StoreConfigError(f"prefix must be a str, not {type(prefix).__name__}")
    prefix = prefix.lstrip("/")
    if not prefix:
        return ""
    if not prefix.endswith("/"):
        prefix += "/"
    segments = prefix[:-1].split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise StoreConfigError(
            f"prefix {prefix!r} has an empty, '.' or '..' segment;"
            " use a plain path like 'sessions/'"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in prefix):
        raise StoreConfigError(f"prefix {prefix!r} contains a control character")
    return prefix


def encode_id(session_id: str) -> str:
    """Percent-encode a session id into the key-safe form.

    Raises:
        InvalidSessionIdError: the id is not a non-empty str or is not valid UTF-8
            (a lone surrogate).
    """
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(f"session id must be a str, not {type(session_id).__name__}")
    if not session_id:
        raise InvalidSessionIdError("session id must not be empty")
    try:
        raw = session_id.encode()
    except UnicodeEncodeError as exc:
        raise InvalidSessionIdError(
            f"session id {session_id!r} cannot be encoded as UTF-8: {exc.reason}"
        ) from exc
    if session_id == ".":
        return "%2E"
    if session_id == "..":
        return "%2E%2E"
    return quote(raw, safe=_SAFE)


def make_key(prefix: str, session_id: str) -> str:
    """Return the object key of ``session_id`` under a normalized ``prefix``.

    Raises:
        InvalidSessionIdError: bad id, or the key would exceed 1024 UTF-8 bytes.
    """
    key = prefix + encode_id(session_id) + SUFFIX
    size = len(key.encode())
    if size > MAX_KEY_BYTES:
        raise InvalidSessionIdError(
            f"session id of {len(session_id)} characters makes a key of {size} bytes;"
            f" the limit is {MAX_KEY_BYTES}"
        )
    return key


def decode_key(prefix: str, key: str) -> str | None:
    """Return the session id stored at ``key``, or ``None`` if the key is not ours.

    A key is ours when it lies directly under ``prefix``, ends in ``.json``, fits in
    :data:`MAX_KEY_BYTES` (as :func:`make_key` requires) and its name round-trips
    through :func:`encode_id` (so foreign objects are ignored).
    """
    if not key.startswith(prefix) or not key.endswith(SUFFIX):
        return None
    if len(key.encode()) > MAX_KEY_BYTES:  # an id no operation would accept
        return None
    name = key[len(prefix) : -len(SUFFIX)]
    # An empty name, or one holding a "/" (deeper down), fails the round trip below.
    try:
        session_id = unquote_to_bytes(name).decode()
        if encode_id(session_id) != name:
            return None
    except (UnicodeDecodeError, InvalidSessionIdError):
        return None
    return session_id

"""Serialization, compression and the size guard (docs/DESIGN.md, "Storage format").

The body of an object is the snapshot serialized by a :class:`Serializer` (JSON by
default), optionally compressed with gzip or zstd. The codec is recorded in the
object's metadata and recognized on load by its magic bytes, so one bucket may hold
plain, gzip and zstd objects side by side.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol, runtime_checkable

import orjson

from sessionstore.errors import (
    SnapshotDecodeError,
    SnapshotEncodeError,
    SnapshotTooLargeError,
    StoreConfigError,
)
from sessionstore.urlparams import COMPRESS_MIN_BYTES, SNAPSHOT_BYTES

__all__ = [
    "Compression",
    "Codec",
    "Encoded",
    "JsonSerializer",
    "Serializer",
]

Compression = Literal["gzip", "zstd"]
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_HINT = "zstd compression needs the zstandard package: pip install 'sessionstore[zstd]'"


@runtime_checkable
class Serializer(Protocol):
    """Turns snapshots into bytes and back. Inject one with ``serializer=``."""

    content_type: str

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj``; raise ``ValueError``/``TypeError`` if it cannot be."""
        ...

    def loads(self, data: bytes) -> Any:
        """Parse ``data``; raise ``ValueError`` if it is not a valid document."""
        ...


class JsonSerializer:
    """UTF-8 JSON, exactly what ``JSON.parse`` reads back (the default serializer).

    Any ``Mapping`` is a JSON object, any ``list``/``tuple`` an array, and a subclass
    of ``str``, ``int`` or ``float`` (a ``StrEnum``, an ``IntEnum``, ...) its plain
    value, at every depth. Integers of any size round-trip exactly, as with the
    stdlib's ``json`` (up to its 4,300-digit limit). Refuses NaN and Infinity,
    non-``str`` keys, lone surrogates, a snapshot that contains itself, nesting
    deeper than 254 levels and every other type.

    orjson does the work; an integer beyond 64 bits (which orjson refuses to write
    and reads as a float) sends that one document through the stdlib's ``json``,
    with the same refusals (docs/DESIGN.md, "Storage format").
    """

    content_type = "application/json"

    def dumps(self, obj: Any) -> bytes:
        """Return the compact UTF-8 JSON of ``obj``.

        Raises:
            ValueError: ``obj`` holds NaN/Infinity, a non-JSON type, a non-str key or
                itself, or nests too deeply, with the path of the offending value in
                the message.
        """
        try:
            raw = orjson.dumps(obj)
        except TypeError:  # orjson.JSONEncodeError: a cycle, a depth or a type it refuses
            raw = None
        # orjson bounds the depth (so the walk below ends) but writes NaN as null and
        # accepts types JSON has not: the one-pass check says whether obj is plain JSON.
        if raw is not None and _is_plain(obj):
            return raw
        plain = _plain(obj, (), set())
        try:
            return orjson.dumps(plain)
        except TypeError as exc:  # an int over 64 bits, a lone surrogate
            return _dumps_exact(plain, exc)

    def loads(self, data: bytes) -> Any:
        """Parse UTF-8 JSON; integers of any size come back exact.

        Raises:
            ValueError: ``data`` is not valid UTF-8 JSON (or holds NaN, Infinity, a
                number too big for a float, a lone surrogate, an integer of more than
                4,300 digits).
        """
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            # orjson refuses an integer literal too big for a double (over ~309 digits).
            if _LONG_INTEGER.search(data) is None:
                raise
            return _loads_exact(data, exc)
        if _maybe_rounded(obj, data):
            return _loads_exact(data, None)
        return obj


#: Floats of this magnitude or more may be orjson's reading of an integer literal
#: beyond 64 bits (it reads -2**63 .. 2**64-1 as int, anything further as float).
_ROUNDED = float(2**63)
#: Bodies of this size or more are walked for such floats first (see _maybe_rounded).
_WALK_FIRST_BYTES = 32 * 1024
#: An integer literal orjson cannot hold as int has 20 digits, or 19 after a minus.
_LONG_INTEGER = re.compile(rb"[0-9]{20}|-[0-9]{19}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _maybe_rounded(obj: Any, data: bytes) -> bool:
    """Whether orjson may have read an integer literal in ``data`` as a float.

    Exact: an integer literal orjson cannot hold as int comes back as a float of
    2**63 or more in magnitude, so a walk for such floats finds every one, at any
    depth. The walk costs per value, so it goes first only on a body of 32 KiB or
    more, and on a budget of one value per KiB (a big snapshot is mostly long strings:
    the walk ends well within it). Otherwise one C pass: a body orjson itself wrote
    (the store's own) is byte for byte what orjson writes again, and orjson writes
    every float with a ``.`` or an exponent, never as an integer literal. Only
    another writer's body (other spacing or escapes) is then walked to the end.
    """
    stack = [obj]
    if len(data) >= _WALK_FIRST_BYTES:
        found = _rounded_float(stack, len(data) >> 10)
        if found is not None:
            return found
    try:
        if orjson.dumps(obj) == data:
            return False
    except TypeError:  # deeper than orjson writes: walk on
        pass
    return bool(_rounded_float(stack, -1))


def _rounded_float(stack: list[Any], budget: int) -> bool | None:
    """Walk what ``stack`` holds for a float of 2**63 or more in magnitude.

    Stops with None once containers holding more than ``budget`` values were opened
    (``stack`` then holds the rest); a negative ``budget`` is no limit.
    """
    limited = budget >= 0
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            extend(value.values())
        elif kind is list:
            extend(value)
        elif kind is float and (value >= _ROUNDED or value <= -_ROUNDED):
            return True
        else:
            continue
        if limited:
            budget -= len(value)
            if budget < 0:
                return None
    return False


class _NotJson(ValueError):
    """What orjson refuses and the stdlib's ``json`` would accept."""


def _refuse_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotJson(f"number {text[:40]} is too big for a float")
    return number


def _loads_exact(data: bytes, orjson_error: ValueError | None) -> Any:
    """Parse with the stdlib's ``json`` (exact integers), refusing what orjson does.

    ``orjson_error``: orjson's own refusal of ``data``, raised again if the stdlib
    refuses it too (its message is the one users see for a corrupt body).
    """
    try:
        text = data.decode()  # strict; a BOM stays, and json refuses it
        obj = json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)
        if _SURROGATE_ESCAPE.search(text) is not None:
            _refuse_lone_surrogates(obj)
    except (json.JSONDecodeError, UnicodeDecodeError, _NotJson, RecursionError) as exc:
        if orjson_error is not None:
            raise orjson_error from None
        raise ValueError(str(exc)) from exc
    # Any other ValueError is the stdlib's: an integer of more than 4,300 digits.
    return obj


def _refuse_lone_surrogates(obj: Any) -> None:
    """``_NotJson`` if a string or key holds a lone surrogate (a ``\\udXXX`` escape)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack.extend(value)
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is str:
            try:
                value.encode()
            except UnicodeEncodeError as exc:
                raise _NotJson("lone surrogate in a string") from exc


def _dumps_exact(plain: Any, orjson_error: TypeError) -> bytes:
    """The compact JSON of ``plain`` (exact JSON types) by the stdlib's ``json``.

    Raises:
        ValueError: a lone surrogate, an integer of more than 4,300 digits.
    """
    try:
        text = json.dumps(
            plain, ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
        )
        return text.encode()
    except UnicodeEncodeError:  # orjson's words for it
        raise ValueError("str is not valid UTF-8: surrogates not allowed") from orjson_error


#: orjson's nesting limit: 254 objects or arrays, one inside the other.
_MAX_DEPTH = 254


def _is_plain(obj: Any) -> bool:
    """Whether ``obj`` holds only exact JSON types and finite floats (one pass).

    Only called on what orjson serialized, so it has no cycle and a bounded depth.
    """
    stack = [obj]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is dict:
            for k in value:
                if type(k) is not str:
                    return False
            extend(value.values())
        elif kind is list or kind is tuple:
            extend(value)
        else:
            return False
    return True


_Path = tuple[Any, ...]  # () for the root, then (parent, key) pairs: formatted only on error


def _where(path: _Path) -> str:
    keys: list[str] = []
    while len(path) == 2:
        path, key = path
        keys.append(f"[{key!r}]")
    return "snapshot" + "".join(reversed(keys))


def _plain(value: Any, path: _Path, active: set[int]) -> Any:
    """A copy of ``value`` in exact JSON types; ValueError naming the path otherwise.

    ``active`` holds the ids of the containers being copied (the path from the top),
    so a container met again inside itself is a cycle, refused at once.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, float):
        number = float.__float__(value)
        if not math.isfinite(number):
            raise ValueError(f"{_where(path)} is {number!r}, which JSON cannot represent")
        return number
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, Mapping | list | tuple):
        if id(value) in active:
            raise ValueError(f"{_where(path)} contains itself (a cycle); JSON is a tree")
        if len(active) >= _MAX_DEPTH:
            raise ValueError(f"snapshot nests more than {_MAX_DEPTH} objects or arrays deep")
        active.add(id(value))
        try:
            if isinstance(value, Mapping):
                return _plain_object(value, path, active)
            return [_plain(v, (path, i), active) for i, v in enumerate(value)]
        finally:
            active.discard(id(value))
    raise ValueError(f"{_where(path)} is a {kind.__name__}, which is not a JSON type")


def _plain_object(value: Mapping[Any, Any], path: _Path, active: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValueError(
                f"{_where(path)} has a key of type {type(k).__name__}; JSON keys are str"
            )
        key = str.__str__(k)
        if key in out:
            raise ValueError(f"{_where(path)} has the key {key!r} twice")
        out[key] = _plain(v, (path, key), active)
    return out


@dataclass(frozen=True, slots=True)
class Encoded:
    """A serialized (maybe compressed) body and the codec name to record, if any."""

    body: bytes
    encoding: Compression | None


class Codec:
    """Serializer + compression + size guard, as configured on a store.

    Raises:
        StoreConfigError: unknown compression, zstd without the ``zstd`` extra, or a
            size out of its range (sessionstore.urlparams).
    """

    def __init__(
        self,
        serializer: Serializer | None = None,
        compression: Compression | None = None,
        compress_min_bytes: int = 1024,
        max_snapshot_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if compression not in (None, "gzip", "zstd"):
            raise StoreConfigError(
                f"compression must be 'gzip', 'zstd' or None, not {compression!r}"
            )
        if compression == "zstd":
            _zstd()
        if serializer is not None and not isinstance(serializer, Serializer):
            raise StoreConfigError("serializer must have dumps(), loads() and content_type")
        SNAPSHOT_BYTES.check("max_snapshot_bytes", max_snapshot_bytes)
        COMPRESS_MIN_BYTES.check("compress_min_bytes", compress_min_bytes)
        self.serializer: Serializer = serializer or JsonSerializer()
        self.compression = compression
        self.compress_min_bytes = compress_min_bytes
        self.max_snapshot_bytes = max_snapshot_bytes

    @property
    def content_type(self) -> str:
        """The content type recorded on stored objects."""
        return self.serializer.content_type

    def encode(self, snapshot: Any) -> Encoded:
        """Serialize and maybe compress ``snapshot``.

        Raises:
            SnapshotEncodeError: not a JSON object, or not serializable.
            SnapshotTooLargeError: the serialized snapshot exceeds ``max_snapshot_bytes``.
        """
        if not isinstance(snapshot, Mapping):
            raise SnapshotEncodeError(
                f"a snapshot must be a JSON object (dict), not {type(snapshot).__name__}"
            )
        try:
            raw = self.serializer.dumps(snapshot)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise SnapshotEncodeError(f"snapshot cannot be serialized: {exc}") from exc
        if len(raw) > self.max_snapshot_bytes:
            raise SnapshotTooLargeError(
                f"snapshot is {len(raw)} bytes, over max_snapshot_bytes={self.max_snapshot_bytes}"
            )
        if self.compression is None or len(raw) < self.compress_min_bytes:
            return Encoded(raw, None)
        if self.compression == "gzip":
            packed = _gzip_compress(raw)
        else:
            packed = _zstd().ZstdCompressor().compress(raw)  # its default level, 3
        # A body that compression does not shrink is stored plain: a stored body is then
        # never bigger than the snapshot, so whatever was saved under the limit loads.
        if len(packed) >= len(raw):
            return Encoded(raw, None)
        return Encoded(packed, self.compression)

    def decode(self, body: bytes, where: str) -> Any:
        """Decompress (by magic bytes) and parse a stored body into a snapshot dict.

        ``where`` names the object in error messages.

        Raises:
            SnapshotTooLargeError: the body, or what it decompresses to, exceeds
                ``max_snapshot_bytes`` (decompression stops there: no bomb).
            SnapshotDecodeError: corrupt, truncated or not a JSON object.
        """
        self.check_size(len(body), where)
        if body.startswith(_GZIP_MAGIC):
            body = self._gunzip(body, where)
        elif body.startswith(_ZSTD_MAGIC):
            body = self._unzstd(body, where)
        try:
            snapshot = self.serializer.loads(body)
        except (ValueError, TypeError, RecursionError) as exc:
            raise SnapshotDecodeError(f"{where} is not a valid snapshot: {exc}") from exc
        if not isinstance(snapshot, dict):
            raise SnapshotDecodeError(
                f"{where} holds a JSON {type(snapshot).__name__}, not a snapshot object"
            )
        return snapshot

    def check_size(self, size: int | None, where: str) -> None:
        """Raise SnapshotTooLargeError if a stored size exceeds ``max_snapshot_bytes``."""
        if size is not None and size > self.max_snapshot_bytes:
            raise SnapshotTooLargeError(
                f"{where} is {size} bytes, over max_snapshot_bytes={self.max_snapshot_bytes}"
            )

    def _gunzip(self, body: bytes, where: str) -> bytes:
        limit = self.max_snapshot_bytes
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(body, limit + 1)
        except zlib.error as exc:
            raise SnapshotDecodeError(f"{where} is corrupt gzip: {exc}") from exc
        if len(out) > limit:
            raise SnapshotTooLargeError(
                f"{where} decompresses to more than max_snapshot_bytes={limit}"
            )
        if not d.eof or d.unused_data:
            raise SnapshotDecodeError(f"{where} is truncated or has trailing bytes (gzip)")
        return out

    def _unzstd(self, body: bytes, where: str) -> bytes:
        zstd = _zstd(decoding=True)
        limit = self.max_snapshot_bytes
        try:
            # A bounded read first: a bomb stops at limit + 1 bytes of output.
            reader = zstd.ZstdDecompressor().stream_reader(body, read_across_frames=False)
            out: bytes = reader.read(limit + 1)
            if len(out) > limit:
                raise SnapshotTooLargeError(
                    f"{where} decompresses to more than max_snapshot_bytes={limit}"
                )
            # The stream reader returns short output on a truncated frame without an
            # error; a decompressobj over the same (now bounded) input tells.
            d = zstd.ZstdDecompressor().decompressobj()
            d.decompress(body)
        except zstd.ZstdError as exc:
            raise SnapshotDecodeError(f"{where} is corrupt zstd: {exc}") from exc
        if not d.eof or d.unused_data:
            raise SnapshotDecodeError(f"{where} is truncated or has trailing bytes (zstd)")
        return out


def _gzip_compress(raw: bytes) -> bytes:
    c = zlib.compressobj(wbits=31)  # a gzip header; zlib's default level, 6
    return c.compress(raw) + c.flush()


def _zstd(*, decoding: bool = False) -> Any:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise StoreConfigError(
            ("this object is zstd-compressed; " if decoding else "") + _ZSTD_HINT
        ) from exc
    return zstandard

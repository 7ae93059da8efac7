"""Serialization, compression and the size guard (docs/DESIGN.md, "Storage format").

The body of an object is the snapshot serialized by a :class:`Serializer` (JSON by
default), optionally compressed with gzip or zstd. The codec is recorded in the
object's metadata and recognized on load by its magic bytes, so one bucket may hold
plain, gzip and zstd objects side by side.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

from sessionstore.errors import (
    SnapshotDecodeError,
    SnapshotEncodeError,
    SnapshotTooLargeError,
    StoreConfigError,
)

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

    Refuses NaN and Infinity, non-``str`` keys, lone surrogates and every type that is
    not ``dict``, ``list``/``tuple``, ``str``, ``int``, ``float``, ``bool`` or ``None``.
    """

    content_type = "application/json"

    def dumps(self, obj: Any) -> bytes:
        """Return the compact UTF-8 JSON of ``obj``.

        Raises:
            ValueError: ``obj`` holds NaN/Infinity, a non-JSON type or a non-str key,
                with the path of the offending value in the message.
        """
        _check_json(obj)
        try:
            return orjson.dumps(obj)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise ValueError(str(exc)) from exc

    def loads(self, data: bytes) -> Any:
        """Parse UTF-8 JSON.

        Raises:
            ValueError: ``data`` is not valid UTF-8 JSON.
        """
        return orjson.loads(data)


def _check_json(obj: Any) -> None:
    """Walk ``obj`` once and raise ValueError on anything JSON cannot hold exactly."""
    stack = [obj]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is float:
            if not math.isfinite(value):
                _raise_at(obj)
        elif kind is dict:
            for k in value:
                if type(k) is not str:
                    _raise_at(obj)
            extend(value.values())
        elif kind is list or kind is tuple:
            extend(value)
        else:
            _raise_at(obj)


def _raise_at(obj: Any, path: str = "snapshot") -> None:
    """Find the first value JSON cannot hold and raise ValueError naming its path."""
    kind = type(obj)
    if kind is float and not math.isfinite(obj):
        raise ValueError(f"{path} is {obj!r}, which JSON cannot represent")
    if kind is dict:
        for k, v in obj.items():
            if type(k) is not str:
                raise ValueError(f"{path} has a key of type {type(k).__name__}; JSON keys are str")
            _raise_at(v, f"{path}[{k!r}]")
    elif kind is list or kind is tuple:
        for i, v in enumerate(obj):
            _raise_at(v, f"{path}[{i}]")
    elif not (kind is str or kind is int or kind is bool or obj is None or kind is float):
        raise ValueError(f"{path} is a {kind.__name__}, which is not a JSON type")


@dataclass(frozen=True, slots=True)
class Encoded:
    """A serialized (maybe compressed) body and the codec name to record, if any."""

    body: bytes
    encoding: Compression | None


class Codec:
    """Serializer + compression + size guard, as configured on a store.

    Raises:
        StoreConfigError: unknown compression, zstd without the ``zstd`` extra, or a
            non-positive size.
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
        if not isinstance(max_snapshot_bytes, int) or max_snapshot_bytes <= 0:
            raise StoreConfigError(
                f"max_snapshot_bytes must be a positive int, not {max_snapshot_bytes!r}"
            )
        if not isinstance(compress_min_bytes, int) or compress_min_bytes < 0:
            raise StoreConfigError(
                f"compress_min_bytes must be a non-negative int, not {compress_min_bytes!r}"
            )
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
            return Encoded(_gzip_compress(raw), "gzip")
        return Encoded(_zstd().ZstdCompressor(level=3).compress(raw), "zstd")

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
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(raw) + c.flush()


def _zstd(*, decoding: bool = False) -> Any:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise StoreConfigError(
            ("this object is zstd-compressed; " if decoding else "") + _ZSTD_HINT
        ) from exc
    return zstandard

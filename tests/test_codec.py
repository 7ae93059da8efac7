"""Serialization, compression and the size guard."""

import dataclasses
import decimal
import enum
import gzip
import json
import math
import re
import subprocess
import sys
import uuid
from collections import OrderedDict, defaultdict
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionstore import SnapshotDecodeError, SnapshotEncodeError, SnapshotTooLargeError
from sessionstore.codec import Codec, JsonSerializer
from tests.tracedpeak import Traced, run_traced

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
snapshots = st.dictionaries(st.text(max_size=10), json_values, max_size=8)


@given(snapshots, st.sampled_from([None, "gzip", "zstd"]))
def test_round_trip_matches_stdlib_json(snap: dict[str, Any], compression: Any) -> None:
    try:
        json.dumps(snap).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(SnapshotEncodeError):
            Codec().encode(snap)
        return
    codec = Codec(compression=compression, compress_min_bytes=0)
    encoded = codec.encode(snap)
    assert codec.decode(encoded.body, "k") == snap
    if compression is None:
        assert json.loads(encoded.body) == snap  # what JSON.parse would read


class Colour(enum.Enum):
    RED = (1, 2)


@dataclasses.dataclass
class Point:
    x: int = 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"a": [1, {"b": math.nan}]}, "snapshot['a'][1]['b'] is nan, which JSON"),
        ({"a": -math.inf}, "snapshot['a'] is -inf, which JSON"),
        ({"x": math.nan, "y": 1}, "snapshot['x'] is nan"),
        ({"y": 1, "x": math.inf}, "snapshot['x'] is inf"),
        ([1, 2], "a JSON object (dict), not list"),
        ({"a": {2: 1}}, "snapshot['a'] has a key of type int; JSON keys are str"),
        ({"a": [{"b": 1}, {1.5: 1}]}, "snapshot['a'][1] has a key of type float"),
        ({"a": {1, 2}}, "snapshot['a'] is a set, which is not a JSON type"),
        ({"a": b"x"}, "snapshot['a'] is a bytes,"),
        ({"a": (1, b"x")}, "snapshot['a'][1] is a bytes,"),
        ({"a": datetime(2024, 1, 1, tzinfo=UTC)}, "snapshot['a'] is a datetime,"),
        ({"a": uuid.UUID(int=1)}, "snapshot['a'] is a UUID,"),
        ({"a": decimal.Decimal("1.5")}, "snapshot['a'] is a Decimal,"),
        ({"a": Colour.RED}, "snapshot['a'] is a Colour,"),
        ({"a": Point()}, "snapshot['a'] is a Point,"),
        ({"a": object()}, "snapshot['a'] is a object,"),
        ({"a": "\udc00"}, "surrogates not allowed"),
    ],
    ids=[
        "nested-nan",
        "minus-inf",
        "nan-before-another-key",
        "inf-after-another-key",
        "not-a-dict",
        "int-key",
        "float-key-in-list",
        "set",
        "bytes",
        "bytes-in-tuple",
        "datetime",
        "uuid",
        "decimal",
        "enum-of-tuple",
        "dataclass",
        "object",
        "lone-surrogate",
    ],
)
def test_non_json_is_refused_with_its_path(bad: Any, message: str) -> None:
    with pytest.raises(SnapshotEncodeError) as info:
        Codec().encode(bad)
    assert message in str(info.value)
    if message.startswith("snapshot["):  # the path starts at the root, named just so
        assert f"cannot be serialized: {message}" in str(info.value)
    assert type(info.value) is SnapshotEncodeError


def test_json_serializer_raises_value_error_only() -> None:
    for bad in ({"a": "\udc00"}, {"a": math.nan}, {"a": Point()}, {"a": {1: 2}}):
        with pytest.raises(ValueError) as info:
            JsonSerializer().dumps(bad)
        assert type(info.value) is ValueError
    assert JsonSerializer().dumps({"a": [1, 2.5, None, True, "é"]}) == (
        '{"a":[1,2.5,null,true,"é"]}'.encode()
    )
    assert JsonSerializer().dumps({"t": (1, 2)}) == b'{"t":[1,2]}'


def test_too_deep_or_unserializable_is_an_encode_error() -> None:
    class Broken:
        content_type = "application/json"

        def dumps(self, obj: Any) -> bytes:
            raise OverflowError("too big")

        def loads(self, data: bytes) -> Any:
            raise RecursionError("too deep")

    codec = Codec(serializer=Broken())
    with pytest.raises(SnapshotEncodeError, match="cannot be serialized: too big"):
        codec.encode({"a": 1})
    with pytest.raises(SnapshotDecodeError, match="k is not a valid snapshot: too deep"):
        codec.decode(b"{}", "k")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_small_bodies_are_not_compressed(compression: Any) -> None:
    codec = Codec(compression=compression, compress_min_bytes=100)
    assert codec.encode({"a": "x" * 91}).encoding is None  # 99 bytes
    assert codec.encode({"a": "x" * 92}).encoding == compression  # exactly 100 bytes
    assert codec.content_type == "application/json"
    default = Codec(compression=compression)  # compress_min_bytes=1024
    assert default.encode({"a": "x" * 1015}).encoding is None  # 1023 bytes
    assert default.encode({"a": "x" * 1016}).encoding == compression


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compression_that_does_not_shrink_is_skipped(compression: Any) -> None:
    """A stored body is never bigger than the snapshot, so what was saved loads."""
    snap = {"a": 1}
    raw = json.dumps(snap, separators=(",", ":")).encode()
    codec = Codec(compression=compression, compress_min_bytes=0, max_snapshot_bytes=len(raw))
    encoded = codec.encode(snap)
    assert encoded.encoding is None and encoded.body == raw
    assert codec.decode(encoded.body, "k") == snap


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_decompressed_size_boundary(compression: Any) -> None:
    snap = {"a": "z" * 5000}
    raw = Codec().encode(snap).body
    body = Codec(compression=compression, compress_min_bytes=0).encode(snap).body
    assert len(body) < len(raw)
    assert Codec(max_snapshot_bytes=len(raw)).decode(body, "k") == snap
    with pytest.raises(
        SnapshotTooLargeError,
        match=f"k decompresses to more than max_snapshot_bytes={len(raw) - 1}",
    ):
        Codec(max_snapshot_bytes=len(raw) - 1).decode(body, "k")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize(
    "tail", [b"\x00", b"junk", b"whole-second-frame"], ids=["nul", "junk", "second-frame"]
)
def test_trailing_bytes_after_the_frame_are_refused(compression: Any, tail: bytes) -> None:
    codec = Codec(compression=compression, compress_min_bytes=0)
    body = codec.encode({"a": "y" * 1000}).body
    if tail == b"whole-second-frame":
        tail = codec.encode({"b": "w" * 1000}).body
    assert codec.decode(body, "k") == {"a": "y" * 1000}
    with pytest.raises(
        SnapshotDecodeError, match=f"k is truncated or has trailing bytes \\({compression}\\)"
    ):
        codec.decode(body + tail, "k")


def test_gzip_inflates_no_further_than_the_limit() -> None:
    """A body that inflates past the limit is refused before the rest is inflated.

    Its checksum is broken: inflating it all would find that and call it corrupt.
    (test_gzip_bomb_stops_at_the_limit measures the same in a process of its own.)
    """
    body = bytearray(gzip.compress(b'{"a":"' + b"x" * 100_000 + b'"}'))
    body[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    with pytest.raises(SnapshotDecodeError, match="k is corrupt gzip"):
        Codec().decode(bytes(body), "k")
    with pytest.raises(
        SnapshotTooLargeError, match="k decompresses to more than max_snapshot_bytes=1000"
    ):
        Codec(max_snapshot_bytes=1000).decode(bytes(body), "k")


def test_decode_names_what_is_wrong() -> None:
    codec = Codec()
    with pytest.raises(SnapshotDecodeError, match="k holds a JSON list, not a snapshot object"):
        codec.decode(b"[1]", "k")
    with pytest.raises(SnapshotDecodeError, match="k is not a valid snapshot"):
        codec.decode(b"{", "k")
    with pytest.raises(SnapshotDecodeError, match="k is corrupt gzip"):
        codec.decode(b"\x1f\x8bxxxxxxxxxx", "k")
    with pytest.raises(SnapshotDecodeError, match="k is corrupt zstd"):
        codec.decode(b"\x28\xb5\x2f\xfdxxxxxxxx", "k")
    assert codec.decode(b"{}", "k") == {}


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "lz4"},
        {"max_snapshot_bytes": 0},
        {"max_snapshot_bytes": 1.5},
        {"compress_min_bytes": -1},
        {"compress_min_bytes": "1"},
        {"serializer": object()},
    ],
    ids=["lz4", "zero-max", "float-max", "negative-min", "str-min", "not-a-serializer"],
)
def test_bad_options(options: dict[str, Any]) -> None:
    from sessionstore import StoreConfigError

    with pytest.raises(StoreConfigError):
        Codec(**options)
    Codec(max_snapshot_bytes=1, compress_min_bytes=0)  # the smallest values that are valid


def decode_bomb_traced(bomb: bytes) -> list[Any]:
    """In a process of its own (tests.tracedpeak): the peak bytes allocated while
    decoding ``bomb``, and the exception that refused it."""
    with Traced() as traced:
        Codec(max_snapshot_bytes=1_000_000).decode(bomb, "k")
    return [traced.peak, traced.raised]


def _decode_peak(bomb: bytes) -> int:
    """Bytes allocated at most while decoding ``bomb`` (refused as too large)."""
    peak, raised = run_traced("tests.test_codec:decode_bomb_traced", bomb)
    assert raised == "SnapshotTooLargeError"
    return int(peak)


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b'{"a":"' + b"0" * 50_000_000 + b'"}')
    assert len(bomb) < 100_000
    assert _decode_peak(bomb) < 10_000_000  # never the 50 MB it would decompress to


def test_zstd_bomb_stops_at_the_limit() -> None:
    import zstandard

    bomb = zstandard.ZstdCompressor().compress(b'{"a":"' + b"0" * 50_000_000 + b'"}')
    assert _decode_peak(bomb) < 10_000_000


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_truncated_compressed_bodies(codec: Any) -> None:
    c = Codec(compression=codec, compress_min_bytes=0)
    body = c.encode({"a": "y" * 10_000}).body
    for cut in (len(body) - 1, len(body) // 2, 5):
        with pytest.raises(SnapshotDecodeError):
            c.decode(body[:cut], "k")


def test_stored_size_over_the_limit() -> None:
    with pytest.raises(SnapshotTooLargeError, match="k is 11 bytes, over max_snapshot_bytes=10"):
        Codec(max_snapshot_bytes=10).decode(b'{"a":"xxx"}', "k")
    assert Codec(max_snapshot_bytes=11).decode(b'{"a":"xxx"}', "k") == {"a": "xxx"}
    Codec(max_snapshot_bytes=10).check_size(None, "k")  # size unknown: read, then checked
    Codec(max_snapshot_bytes=10).check_size(10, "k")
    with pytest.raises(SnapshotTooLargeError, match="k is 11 bytes"):
        Codec(max_snapshot_bytes=10).check_size(11, "k")


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Ratio(float, enum.Enum):
    HALF = 0.5


class Name(str):
    pass


def test_mappings_and_subclasses_are_plain_json_at_every_depth() -> None:
    inner = OrderedDict(x=1, level=Level.HIGH)
    snap = {
        "a": inner,
        "b": defaultdict(list, y=[Color.RED, Ratio.HALF, Name("n")]),
        "c": MappingProxyType({Name("k"): [OrderedDict(deep=Color.RED)]}),
        Color.RED: True,
    }
    body = Codec().encode(OrderedDict(snap)).body
    plain = {
        "a": {"x": 1, "level": 3},
        "b": {"y": ["red", 0.5, "n"]},
        "c": {"k": [{"deep": "red"}]},
        "red": True,
    }
    assert body == json.dumps(plain, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"a": [1, {"b": float("nan")}]}, "snapshot['a'][1]['b']"),
        ({"a": enum.Enum("Plain", "X").X}, "snapshot['a'] is a Plain"),
        ({"a": OrderedDict({1: 2})}, "key of type int"),
    ],
)
def test_subclass_path_refuses_what_json_cannot_hold(bad: Any, where: str) -> None:
    with pytest.raises(SnapshotEncodeError, match=re.escape(where)):
        Codec().encode(OrderedDict(bad))


_CYCLES = """
from collections import OrderedDict
from sessionstore import SnapshotEncodeError
from sessionstore.codec import Codec
snap = {"a": [1, {}]}
snap["a"][1]["back"] = snap
mapping = OrderedDict(x=[])
mapping["x"].append(mapping)
for bad in (snap, mapping):
    try:
        Codec().encode(bad)
    except SnapshotEncodeError as exc:
        print(exc)
"""


def test_a_snapshot_that_contains_itself_is_refused_at_once() -> None:
    # In a child process: before the fix the check looped forever (timeout: a hang guard).
    out = subprocess.run(
        [sys.executable, "-c", _CYCLES], capture_output=True, text=True, timeout=120
    ).stdout.splitlines()
    assert len(out) == 2 and all("contains itself" in line for line in out), out
    assert "snapshot['a'][1]['back']" in out[0]


def test_nesting_deeper_than_orjson_allows_is_an_encode_error() -> None:
    deep: Any = {}
    for _ in range(300):
        deep = {"d": deep}
    with pytest.raises(SnapshotEncodeError, match="254"):
        Codec().encode(deep)
    shallow: Any = 1
    for _ in range(253):
        shallow = [shallow]
    assert Codec().encode({"ok": shallow}).body.startswith(b'{"ok":[[')


def test_encoded_size_boundary() -> None:
    snap = {"a": "xxx"}  # 11 bytes of JSON
    assert Codec(max_snapshot_bytes=11).encode(snap).body == b'{"a":"xxx"}'
    with pytest.raises(
        SnapshotTooLargeError, match="snapshot is 11 bytes, over max_snapshot_bytes=10"
    ):
        Codec(max_snapshot_bytes=10).encode(snap)


BIG = {
    "account_id": 123456789012345678901234567890,
    "above_uint64": 2**64,
    "below_int64": -(2**63) - 1,
    "edges": [2**64 - 1, -(2**63), 2**63],
    "huge": 10**400,  # orjson cannot even read this as a float
    "float": 1e19,
    "nested": {"n": [-(10**30), {"m": 7**50}]},
}


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"], ids=["plain", "gzip", "zstd"])
def test_big_integers_round_trip_exactly(compression: Any) -> None:
    codec = Codec(compression=compression, compress_min_bytes=0)
    body = codec.encode(BIG).body
    loaded = codec.decode(body, "k")
    assert loaded == BIG and repr(loaded) == repr(BIG)  # ints stay int, 1e19 stays float
    plain = Codec().encode(BIG).body
    assert json.loads(plain) == BIG  # what the stdlib reads back
    assert plain.startswith(b'{"account_id":123456789012345678901234567890,')


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(BIG).encode(),  # the stdlib's spacing
        json.dumps(BIG, separators=(",", ":")).encode(),
        json.dumps({**BIG, "é": "\U0001f600"}).encode(),  # ensure_ascii escapes
        json.dumps({**BIG, "é": "\U0001f600"}, ensure_ascii=False, indent=2).encode(),
    ],
    ids=["stdlib", "compact", "escaped", "indented"],
)
def test_big_integers_written_by_another_writer_load_exactly(body: bytes) -> None:
    for compression in (None, "gzip", "zstd"):
        codec = Codec(compression=compression, compress_min_bytes=0)
        stored = _compressed_by_another_writer(body, compression)
        assert codec.decode(stored, "k") == json.loads(body)
        assert repr(codec.decode(stored, "k")) == repr(json.loads(body))


def _compressed_by_another_writer(body: bytes, compression: Any) -> bytes:
    if compression == "gzip":
        return gzip.compress(body)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(body)
    return body


def _assert_loads_exactly(snap: dict[str, Any], compression: Any) -> None:
    """``snap`` saved by the codec, and written by the stdlib's ``json`` (compact and
    indented), loads back equal and of the same types (an int stays an int)."""
    codec = Codec(compression=compression, compress_min_bytes=0)
    bodies = [
        codec.encode(snap).body,
        _compressed_by_another_writer(json.dumps(snap).encode(), compression),
        _compressed_by_another_writer(json.dumps(snap, indent=1).encode(), compression),
    ]
    for body in bodies:
        loaded = codec.decode(body, "k")
        assert loaded == snap and repr(loaded) == repr(snap)


#: Where orjson stops reading an integer literal as an int: it reads -2**63 (the
#: int64 minimum) .. 2**64 - 1 (the uint64 maximum) as int, what lies beyond as a
#: float. Literals of 19, 20 and 21 digits on both sides of those edges.
INTEGER_EDGES = [
    2**63 - 1,  # int64 maximum, 19 digits
    -(2**63),  # int64 minimum
    2**63,
    2**64 - 1,  # uint64 maximum, 20 digits
    2**64,  # uint64 maximum + 1
    -(2**63) - 1,  # int64 minimum - 1
    10**18,  # the smallest of 19 digits
    10**19 - 1,  # the largest of 19 digits: fits in uint64
    -(10**19 - 1),  # 19 digits after a minus: below the int64 minimum
    10**19,  # the smallest of 20 digits: fits in uint64
    10**20 - 1,  # the largest of 20 digits: beyond uint64
    -(10**19),
    10**20,  # 21 digits
    -(10**20),
]


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"], ids=["plain", "gzip", "zstd"])
@pytest.mark.parametrize("number", INTEGER_EDGES, ids=str)
def test_integers_at_the_64_bit_edges_load_exactly(number: int, compression: Any) -> None:
    snap = {
        "n": number,
        "nested": [[{"deep": [1.5, number, "x"]}], {"k": {"m": number}}],
        "as text": [str(number), f"id-{number}{number}"],  # digits inside strings
    }
    _assert_loads_exactly(snap, compression)


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"], ids=["plain", "gzip", "zstd"])
def test_long_digit_runs_inside_strings_stay_strings(compression: Any) -> None:
    digits = "1234567890" * 5
    snap = {
        "phone": digits,
        "minus": "-" + digits,
        "key" + digits: [digits, {"-" + digits: digits + ".5e400"}],
        "small": 7,
    }
    _assert_loads_exactly(snap, compression)


# Bodies of 32 KiB or more are walked for rounded integers first, on a budget of one
# value per KiB; a body with more values than that is checked another way, then its
# walk goes on (codec._maybe_rounded). The walk takes an object's last value first.
LARGE_BODIES = {
    "few long values": {f"text{i}": "x" * 4000 for i in range(20)},  # 80 KB, 20 values
    "many short values": {f"turn{i}": [i, "y" * 20, {"t": 0.5}] for i in range(2000)},
}


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"], ids=["plain", "gzip", "zstd"])
@pytest.mark.parametrize("shape", list(LARGE_BODIES))
@pytest.mark.parametrize("where", ["walked first", "walked last", "nowhere"])
def test_big_integers_in_large_bodies_load_exactly(
    shape: str, where: str, compression: Any
) -> None:
    big = {"walked first": [[2**64]], "walked last": {"n": [-(2**63) - 1]}, "nowhere": 2**63}
    filler = LARGE_BODIES[shape]
    if where == "walked last":
        snap = {"first": big[where], **filler}
    else:
        snap = {**filler, "last": big[where]}
    assert len(json.dumps(snap)) > 64 * 1024
    _assert_loads_exactly(snap, compression)


@pytest.mark.parametrize("pad", [0, 40_000], ids=["small", "large"])
def test_a_big_integer_deeper_than_orjson_writes_loads_exactly(pad: int) -> None:
    deep: Any = [2**64]
    for _ in range(300):  # orjson reads 1,024 levels but writes only 254
        deep = [deep]
    snap = {"pad": "p" * pad, "deep": deep}
    body = json.dumps(snap, separators=(",", ":")).encode()
    loaded = Codec().decode(body, "k")
    assert loaded == snap and repr(loaded) == repr(snap)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": NaN, "b": 123456789012345678901234567890}', "unexpected character"),
        (b'{"a": -Infinity, "b": 123456789012345678901234567890}', "no digit after sign"),
        (b'{"a": 1e400, "b": 123456789012345678901234567890}', "number is infinity"),
        (b'{"a": 1' + b"0" * 400 + b', "b": NaN}', "number is infinity"),
        (b'{"a": "\\ud800", "b": 123456789012345678901234567890}', "surrogate"),
        (b'{"\\udc00": 1, "b": 123456789012345678901234567890}', "surrogate"),
        (b'\xef\xbb\xbf{"b": 123456789012345678901234567890}', "BOM"),
        (b'{"a": "\xff", "b": 123456789012345678901234567890}', "not valid UTF-8"),
        (b'{"b": 123456789012345678901234567890', "unexpected end of data"),
        (b'{"b": 123456789012345678901234567890}{}', "content after document"),
        (b'{"a": "\x01", "b": 123456789012345678901234567890}', "control character"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "4300 digits"),
    ],
    ids=[
        "nan",
        "minus-infinity",
        "float-overflow",
        "huge-int-then-nan",
        "lone-surrogate",
        "lone-surrogate-key",
        "bom",
        "bad-utf8",
        "truncated",
        "trailing-document",
        "control-character",
        "int-over-4300-digits",
    ],
)
def test_the_exact_path_refuses_what_orjson_refuses(body: bytes, message: str) -> None:
    with pytest.raises(SnapshotDecodeError, match=message):
        Codec().decode(body, "k")


# Floats JSON writers get wrong: 17 digits needed, subnormals, the extremes, -0.0,
# and decimal strings that sit on or next to a rounding boundary.
HARD_FLOATS = [
    "0.30000000000000004",
    "5e-324",
    "2.4703282292062328e-324",
    "4.9406564584124654e-324",
    "2.225073858507201e-308",
    "2.2250738585072011e-308",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "-0.0",
    "9007199254740993.0",
    "0.1000000000000000055511151231257827021181583404541015625",
    "123456789012345678901234567890.0",
    "1e23",
    "8.98846567431158e307",
]


@pytest.mark.parametrize("literal", HARD_FLOATS)
def test_hard_floats_are_read_bit_exactly_on_both_paths(literal: str) -> None:
    expected = float(literal)
    common = Codec().decode(f'{{"x": {literal}}}'.encode(), "k")["x"]
    exact = Codec().decode(f'{{"x": {literal}, "big": {2**70}}}'.encode(), "k")["x"]
    for got in (common, exact):
        assert type(got) is float and got.hex() == expected.hex()
    body = Codec().encode({"x": expected, "big": 2**70}).body
    assert Codec().decode(body, "k")["x"].hex() == expected.hex()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"a": 2**64, "b": math.nan}, "snapshot['b'] is nan"),
        ({"a": 2**64, "b": [object()]}, "snapshot['b'][0] is a object"),
        ({"a": 2**64, "b": "\udc00"}, "surrogates not allowed"),
        ({"a": 10**5000}, "4300 digits"),
    ],
    ids=["nan", "object", "lone-surrogate", "over-4300-digits"],
)
def test_the_exact_path_refuses_what_json_cannot_hold(bad: Any, message: str) -> None:
    with pytest.raises(SnapshotEncodeError, match=re.escape(message)):
        Codec().encode(bad)


def test_a_lone_surrogate_keeps_orjson_s_refusal_as_the_cause() -> None:
    with pytest.raises(ValueError, match="surrogates not allowed") as info:
        JsonSerializer().dumps({"a": "\udc00"})  # refused by orjson, then by the stdlib
    assert isinstance(info.value.__cause__, orjson.JSONEncodeError)
    assert "surrogates not allowed" in str(info.value.__cause__)


def test_a_body_too_deep_for_the_stdlib_is_refused_with_its_reason() -> None:
    """orjson reads 1,024 levels; the exact path's stdlib ``json`` may give up sooner.

    Its reason (not orjson's: orjson read the body) is what the message says. How deep
    the stdlib reads follows the recursion limit (on Python 3.11): the test sets one
    that leaves it 150 frames, whatever the limit the run has.
    """
    body = b'{"a":' + b"[" * 1020 + str(2**64).encode() + b"]" * 1020 + b"}"
    frames, frame = 0, sys._getframe()
    while frame is not None:
        frames, frame = frames + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frames + 150)
    try:
        try:
            expected = json.loads(body)
        except RecursionError as exc:
            with pytest.raises(SnapshotDecodeError) as info:
                Codec().decode(body, "k")
            assert str(info.value) == f"k is not a valid snapshot: {exc}"
            assert "recursion" in str(info.value)
        else:  # an interpreter whose json depth is not the recursion limit's
            assert Codec().decode(body, "k") == expected
    finally:
        sys.setrecursionlimit(limit)


def test_a_big_integer_still_meets_the_size_guard() -> None:
    snap = {"a": 2**64}  # {"a":18446744073709551616} is 26 bytes
    assert len(Codec(max_snapshot_bytes=26).encode(snap).body) == 26
    with pytest.raises(SnapshotTooLargeError, match="snapshot is 26 bytes"):
        Codec(max_snapshot_bytes=25).encode(snap)
    with pytest.raises(SnapshotTooLargeError):
        Codec(max_snapshot_bytes=25).decode(b'{"a":18446744073709551616}', "k")


def test_zstd_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionstore import StoreConfigError

    body = Codec(compression="zstd", compress_min_bytes=0).encode({"a": "z" * 100}).body
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes `import zstandard` fail
    hint = "zstd compression needs the zstandard package: pip install 'sessionstore\\[zstd\\]'"
    with pytest.raises(StoreConfigError, match=f"^{hint}$"):
        Codec(compression="zstd")
    with pytest.raises(StoreConfigError, match=f"^this object is zstd-compressed; {hint}$"):
        Codec().decode(body, "k")
    assert Codec(compression="gzip").decode(b'{"a":1}', "k") == {"a": 1}


# How the load check spends its effort (codec._maybe_rounded): exact either way, so
# only these tests see a walk that runs too long or a stdlib parse that was not needed.


def test_the_walk_stops_when_its_budget_is_spent() -> None:
    from sessionstore.codec import _rounded_float

    assert _rounded_float([[1, 2]], 2) is False  # opened exactly its budget: done
    stack: list[Any] = [{"a": [1, 2, 3], "b": "x"}]
    assert _rounded_float(stack, 2) is None  # two values ("x" last in, first out), then
    assert stack == [1, 2, 3]  # three more: over; the rest is left for the next walk
    assert _rounded_float(stack, -1) is False  # no limit
    assert _rounded_float([[1]], 0) is None
    assert _rounded_float([[1.5, -1e18, "1" * 30, 2**64]], -1) is False  # an int is exact
    assert _rounded_float([[float(2**63)]], -1) is True
    assert _rounded_float([{"k": [-float(2**63)]}], 0) is None  # the budget comes first
    assert _rounded_float([{"k": [-float(2**63)]}], 2) is True


class _CountingOrjson:
    """orjson, keeping what ``dumps`` (the check's C pass) was given."""

    def __init__(self) -> None:
        import orjson

        self._orjson = orjson
        self.dumped: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._orjson, name)

    def dumps(self, obj: Any) -> bytes:
        self.dumped.append(obj)
        return bytes(self._orjson.dumps(obj))


_EXACTLY_32_KIB = {"a": "x" * (32 * 1024 - len('{"a":""}'))}
_JUST_UNDER_32_KIB = {"a": "x" * (32 * 1024 - 1 - len('{"a":""}'))}
_ONE_VALUE_PER_1300_BYTES = {f"t{i:02}": "x" * 1290 for i in range(30)}  # 39 KB, 30 values


@pytest.mark.parametrize(
    ("snap", "passes"),
    [
        ({"a": "x" * 100, "n": 2**63}, 1),  # under 32 KiB: the C pass
        (_JUST_UNDER_32_KIB, 1),
        (_EXACTLY_32_KIB, 0),  # from 32 KiB: walked first, within its budget
        (_ONE_VALUE_PER_1300_BYTES, 0),  # 30 values, a budget of 38
        (LARGE_BODIES["few long values"], 0),
        (LARGE_BODIES["many short values"], 1),  # budget spent: the C pass
    ],
    ids=["small", "32 KiB - 1", "32 KiB", "1300 bytes a value", "few long", "many short"],
)
def test_the_load_check_of_a_body_orjson_wrote(
    snap: dict[str, Any], passes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sessionstore.codec

    def not_needed(data: bytes, error: Any) -> Any:
        raise AssertionError("parsed again by the stdlib's json: no integer needs it")

    counting = _CountingOrjson()
    monkeypatch.setattr(sessionstore.codec, "orjson", counting)
    monkeypatch.setattr(sessionstore.codec, "_loads_exact", not_needed)
    body = counting._orjson.dumps(snap)
    loaded = JsonSerializer().loads(body)
    assert loaded == snap
    assert counting.dumped == [loaded] * passes  # the C pass re-serializes what it read


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"text": "é", "count": 3, "done": True, "none": None, "ratio": 0.5},
        {"messages": [{"role": "user", "parts": ("a", 1, -2.5e300)}], "nested": {"k": {}}},
    ],
    ids=["empty", "scalars", "containers"],
)
def test_plain_json_is_written_without_the_slow_copy(
    snapshot: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The common path (BENCHMARKS.md, "Codecs"): a snapshot of exact JSON types is written
    # as orjson wrote it, never through the checked copy that non-plain values need.
    def no_copy(*args: object) -> None:
        raise AssertionError("a plain snapshot went through the slow copy")

    monkeypatch.setattr("sessionstore.codec._plain", no_copy)
    assert JsonSerializer().dumps(snapshot) == orjson.dumps(snapshot)

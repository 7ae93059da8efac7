"""Serialization, compression and the size guard."""

import enum
import gzip
import json
import math
import re
import subprocess
import sys
from collections import OrderedDict, defaultdict
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionstore import SnapshotDecodeError, SnapshotEncodeError, SnapshotTooLargeError
from sessionstore.codec import Codec

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
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


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"a": [1, {"b": math.nan}]}, "snapshot['a'][1]['b']"),
        ({"a": -math.inf}, "snapshot['a']"),
        ({"a": {2: 1}}, "key of type int"),
        ({"a": {1, 2}}, "set"),
        ({"a": b"x"}, "bytes"),
    ],
)
def test_non_json_is_refused_with_its_path(bad: Any, where: str) -> None:
    with pytest.raises(SnapshotEncodeError) as info:
        Codec().encode(bad)
    assert where in str(info.value)


def test_small_bodies_are_not_compressed() -> None:
    codec = Codec(compression="gzip", compress_min_bytes=100)
    assert codec.encode({"a": 1}).encoding is None
    assert codec.encode({"a": "x" * 200}).encoding == "gzip"


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b'{"a":"' + b"0" * 50_000_000 + b'"}')
    assert len(bomb) < 100_000
    with pytest.raises(SnapshotTooLargeError):
        Codec(max_snapshot_bytes=1_000_000).decode(bomb, "k")


def test_zstd_bomb_stops_at_the_limit() -> None:
    import zstandard

    bomb = zstandard.ZstdCompressor().compress(b'{"a":"' + b"0" * 50_000_000 + b'"}')
    with pytest.raises(SnapshotTooLargeError):
        Codec(max_snapshot_bytes=1_000_000).decode(bomb, "k")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_truncated_compressed_bodies(codec: Any) -> None:
    c = Codec(compression=codec, compress_min_bytes=0)
    body = c.encode({"a": "y" * 10_000}).body
    for cut in (len(body) - 1, len(body) // 2, 5):
        with pytest.raises(SnapshotDecodeError):
            c.decode(body[:cut], "k")


def test_stored_size_over_the_limit() -> None:
    with pytest.raises(SnapshotTooLargeError, match="k is 11 bytes"):
        Codec(max_snapshot_bytes=10).decode(b'{"a":"xxx"}', "k")


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

"""The exception tree documented in sessionstore.errors is the one the code has."""

import re

import pytest

import sessionstore.errors as errors
from sessionstore import SnapshotEncodeError, SnapshotTooLargeError
from sessionstore.codec import Codec

_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>\w+Error)\s*(?P<rest>.*)$")


def _tree() -> dict[str, tuple[int, str]]:
    doc = errors.__doc__ or ""
    return {
        m["name"]: (len(m["indent"]), m["rest"])
        for m in map(_LINE.match, doc.splitlines())
        if m is not None
    }


def test_the_documented_tree_matches_the_classes() -> None:
    tree = _tree()
    assert set(tree) == set(errors.__all__)
    parents: list[tuple[int, str]] = []
    for name, (depth, rest) in tree.items():
        while parents and parents[-1][0] >= depth:
            parents.pop()
        cls = getattr(errors, name)
        if parents:
            assert cls.__mro__[1].__name__ == parents[-1][1], name
        assert ("(also ValueError)" in rest) == issubclass(cls, ValueError), name
        parents.append((depth, name))


def test_too_large_is_documented_where_it_is_raised() -> None:
    with pytest.raises(SnapshotTooLargeError):
        Codec(max_snapshot_bytes=10).encode({"pad": "x" * 100})
    tree = _tree()
    assert "large" not in tree["SnapshotEncodeError"][1]
    assert "large" not in (SnapshotEncodeError.__doc__ or "")
    assert "max_snapshot_bytes" in tree["SnapshotTooLargeError"][1]

"""Key encoding: every id round-trips and no key escapes the prefix."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionstore import InvalidSessionIdError, StoreConfigError
from sessionstore.keys import decode_key, encode_id, make_key, normalize_prefix


@given(st.text(min_size=1, max_size=200))
def test_any_encodable_id_round_trips_under_the_prefix(session_id: str) -> None:
    try:
        key = make_key("sessions/", session_id)
    except InvalidSessionIdError:
        with pytest.raises(UnicodeEncodeError):
            session_id.encode("utf-8")
        return
    name = key[len("sessions/") : -len(".json")]
    assert key.startswith("sessions/") and key.endswith(".json")
    assert "/" not in name and name not in (".", "..")
    assert all(ord(c) > 0x20 and ord(c) < 0x7F for c in name)
    assert decode_key("sessions/", key) == session_id


@pytest.mark.parametrize(
    ("session_id", "encoded"),
    [
        ("abc-DEF_123", "abc-DEF_123"),
        ("a/b", "a%2Fb"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "..."),
        ("a b", "a%20b"),
        ("100%", "100%25"),
        ("é", "%C3%A9"),
        ("\x00", "%00"),
    ],
)
def test_encoding_examples(session_id: str, encoded: str) -> None:
    assert encode_id(session_id) == encoded


def test_plain_ids_are_unchanged_for_typescript_stores() -> None:
    assert make_key("sessions/", "sess_01HZX-abc") == "sessions/sess_01HZX-abc.json"


@pytest.mark.parametrize("bad", ["", None, 1, b"x", "\ud800", "x" * 1020])
def test_invalid_ids(bad: object) -> None:
    with pytest.raises(InvalidSessionIdError):
        make_key("sessions/", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "other/x.json",
        "sessions/x.txt",
        "sessions/a/b.json",
        "sessions/.json",
        "sessions/a%2fb.json",
        "sessions/%zz.json",
        "sessions/%FF.json",
        "sessions/a b.json",
    ],
)
def test_foreign_keys_decode_to_none(key: str) -> None:
    assert decode_key("sessions/", key) is None


@pytest.mark.parametrize(
    ("given_prefix", "normalized"),
    [("", ""), ("/", ""), ("sessions", "sessions/"), ("/a/b/", "a/b/"), ("a/b", "a/b/")],
)
def test_prefix_normalization(given_prefix: str, normalized: str) -> None:
    assert normalize_prefix(given_prefix) == normalized


@pytest.mark.parametrize("bad", ["a//b", "a/../b", "./a", "a\nb", 3])
def test_bad_prefixes(bad: object) -> None:
    with pytest.raises(StoreConfigError):
        normalize_prefix(bad)  # type: ignore[arg-type]

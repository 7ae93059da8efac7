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
        ("a~b", "a~b"),
        ("a+b", "a%2Bb"),
    ],
    ids=[
        "plain",
        "slash",
        "dot",
        "dotdot",
        "three-dots",
        "space",
        "percent",
        "e-acute",
        "nul",
        "tilde",
        "plus",
    ],
)
def test_encoding_examples(session_id: str, encoded: str) -> None:
    assert encode_id(session_id) == encoded


def test_plain_ids_are_unchanged_for_typescript_stores() -> None:
    assert make_key("sessions/", "sess_01HZX-abc") == "sessions/sess_01HZX-abc.json"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "must not be empty"),
        (None, "must be a str, not NoneType"),
        (1, "must be a str, not int"),
        (b"x", "must be a str, not bytes"),
        ("\ud800", "cannot be encoded as UTF-8: surrogates not allowed"),
        ("x" * 1020, "makes a key of 1034 bytes; the limit is 1024"),
    ],
    ids=["empty", "None", "int", "bytes", "lone-surrogate", "too-long"],
)
def test_invalid_ids(bad: object, message: str) -> None:
    with pytest.raises(InvalidSessionIdError, match=message):
        make_key("sessions/", bad)  # type: ignore[arg-type]


def test_key_length_boundary() -> None:
    """A key of exactly 1024 UTF-8 bytes is accepted; 1025 is refused."""
    fits = "x" * (1024 - len("sessions/") - len(".json"))
    assert len(make_key("sessions/", fits).encode()) == 1024
    with pytest.raises(InvalidSessionIdError, match="of 1011 characters makes a key of 1025 bytes"):
        make_key("sessions/", fits + "x")
    # The limit counts encoded bytes: one "é" is 6 bytes of key ("%C3%A9").
    assert len(make_key("", "é" * 169 + "x" * 5).encode()) == 1024
    with pytest.raises(InvalidSessionIdError):
        make_key("", "é" * 170)


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


def test_a_key_over_the_limit_is_not_ours() -> None:
    """Only ids that make_key accepts are listed: every operation would refuse the rest."""
    fits = "sessions/" + "x" * (1024 - len("sessions/") - len(".json")) + ".json"
    assert decode_key("sessions/", fits) == fits[len("sessions/") : -len(".json")]
    assert decode_key("sessions/", fits.replace("x", "xx", 1)) is None
    assert decode_key("é/", "é/" + "x" * 1017 + ".json") is None  # 1025 bytes, 1024 characters


@pytest.mark.parametrize(
    ("given_prefix", "normalized"),
    [
        ("", ""),
        ("/", ""),
        ("sessions", "sessions/"),
        ("/a/b/", "a/b/"),
        ("a/b", "a/b/"),
        ("//X", "X/"),
    ],
)
def test_prefix_normalization(given_prefix: str, normalized: str) -> None:
    assert normalize_prefix(given_prefix) == normalized


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("a//b", "empty, '.' or '..' segment"),
        ("a/../b", "empty, '.' or '..' segment"),
        ("./a", "empty, '.' or '..' segment"),
        ("a/.", "empty, '.' or '..' segment"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x1fb", "control character"),
        (3, "must be a str, not int"),
    ],
    ids=["empty-segment", "dotdot", "dot", "trailing-dot", "newline", "del", "unit-sep", "int"],
)
def test_bad_prefixes(bad: object, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        normalize_prefix(bad)  # type: ignore[arg-type]


def test_prefix_may_hold_spaces_and_unicode() -> None:
    assert normalize_prefix("a b/é ~") == "a b/é ~/"

"""What the provider module gives an author: one status table and the redaction of
secrets, the same for every cloud (the cloud tests exercise them through the SDKs)."""

import pytest

from sessionstore.provider import (
    _AccessDenied,
    _Failed,
    _Fault,
    _NotFound,
    _PreconditionFailed,
    _Transient,
    http_fault,
    redact,
)


@pytest.mark.parametrize(
    ("status", "fault"),
    [
        (401, _AccessDenied),
        (403, _AccessDenied),
        (404, _NotFound),
        (408, _Transient),
        (412, _PreconditionFailed),
        (429, _Transient),
        (500, _Transient),
        (502, _Transient),
        (503, _Transient),
        (504, _Transient),
        (400, _Failed),
        (409, _Failed),
        (501, _Failed),
        (None, _Failed),
    ],
    ids=lambda value: str(value) if not isinstance(value, type) else value.__name__,
)
def test_status_table(status: int | None, fault: type[_Fault]) -> None:
    assert http_fault(status) is fault


def test_the_service_code_comes_before_the_status() -> None:
    codes = {"SlowDown": _Transient, "NoSuchBucket": _AccessDenied}
    assert http_fault(503, "SlowDown", codes) is _Transient
    assert http_fault(404, "NoSuchBucket", codes) is _AccessDenied
    assert http_fault(404, "NoSuchKey", codes) is _NotFound
    assert http_fault(404, "", None) is _NotFound


def test_a_fault_names_itself_without_detail() -> None:
    assert _Transient().detail == "_Transient"
    assert _Transient("SlowDown, HTTP 503").detail == "SlowDown, HTTP 503"
    assert str(_Failed("x")) == "x" and _Failed().attempts == 1


@pytest.mark.parametrize(
    "name",
    [
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-security-token",
        "AccountKey",
        "SharedAccessSignature",
        "se",
        "sp",
        "sv",
        "skoid",
        "sktid",
        "skv",
        "access_token",
        "client_secret",
    ],
)
def test_secrets_are_redacted(name: str) -> None:
    text = f"GET https://h/c?a=1&{name}=S3CR3T&b=2; {name}='S3CR3T' {name}=\"S3CR3T\""
    redacted = redact(text)
    assert "S3CR3T" not in redacted
    assert redacted == f"GET https://h/c?a=1&{name}=***&b=2; {name}='***' {name}=\"***\""


def test_redaction_leaves_other_text_alone() -> None:
    text = "NoSuchKey, HTTP 404: key=sessions/a.json prefix=x since=2024"
    assert redact(text) == text

"""What the provider module gives an author: one status table and the redaction of
secrets, the same for every cloud (the cloud tests exercise them through the SDKs)."""

import pytest

from sessionstore.provider import (
    ABSENT,
    UNCONDITIONAL,
    AccessDenied,
    Condition,
    Failed,
    Fault,
    NotFound,
    PreconditionFailed,
    Transient,
    http_fault,
    redact,
)


@pytest.mark.parametrize(
    ("status", "fault"),
    [
        (401, AccessDenied),
        (403, AccessDenied),
        (404, NotFound),
        (408, Transient),
        (412, PreconditionFailed),
        (429, Transient),
        (500, Transient),
        (502, Transient),
        (503, Transient),
        (504, Transient),
        (400, Failed),
        (409, Failed),
        (501, Failed),
        (None, Failed),
    ],
    ids=lambda value: str(value) if not isinstance(value, type) else value.__name__,
)
def test_status_table(status: int | None, fault: type[Fault]) -> None:
    assert http_fault(status) is fault


def test_the_service_code_comes_before_the_status() -> None:
    codes = {"SlowDown": Transient, "NoSuchBucket": AccessDenied}
    assert http_fault(503, "SlowDown", codes) is Transient
    assert http_fault(404, "NoSuchBucket", codes) is AccessDenied
    assert http_fault(404, "NoSuchKey", codes) is NotFound
    assert http_fault(404, "", None) is NotFound


def test_a_fault_names_itself_without_detail() -> None:
    assert Transient().detail == "Transient"
    assert Transient("SlowDown, HTTP 503").detail == "SlowDown, HTTP 503"
    assert str(Failed("x")) == "x" and Failed().attempts == 1


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


def test_a_condition_is_a_version_or_absent_not_both() -> None:
    with pytest.raises(ValueError, match="a version or absent, not both"):
        Condition(version="v1", absent=True)
    assert Condition(absent=True) == ABSENT and Condition() == UNCONDITIONAL
    ABSENT.require(None)
    Condition(version="v1").require("v1")
    for condition, current in [(ABSENT, "v1"), (Condition(version="v1"), "v2")]:
        with pytest.raises(PreconditionFailed):
            condition.require(current)
    with pytest.raises(PreconditionFailed):
        Condition(version="v1").require(None)

"""copy_sessions between real stores: what counts as identical, what counts as failed."""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sessionstore import FileSessionStore, MemorySessionStore, StoreConfigError
from sessionstore.copy import copy_sessions
from sessionstore.stores.s3 import S3SessionStore
from sessionstore.testing import Emulator
from tests.contract import snapshot


async def test_true_1_and_1_0_are_not_the_same_session(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    cases = {
        "bool": ({"approved": True, "ratio": 1.0}, {"approved": 1, "ratio": 1}),
        "float": ({"ratio": 1.0}, {"ratio": 1}),
        "zero": ({"x": [0.0]}, {"x": [-0.0]}),
        "nested": ({"a": {"b": [False]}}, {"a": {"b": [0]}}),
    }
    for session_id, (theirs, ours) in cases.items():
        await src.save(session_id, theirs)
        await dst.save(session_id, ours)
    await src.save("same", {"b": 1, "a": [1.5, True]})
    await dst.save("same", {"a": [1.5, True], "b": 1})  # key order does not matter
    report = await copy_sessions(src, dst, delete_source=True)
    assert (report.copied, report.skipped, report.failures) == (4, 1, [])
    for session_id, (theirs, _) in cases.items():
        copied = await dst.load(session_id)
        assert copied == theirs and repr(copied) == repr(theirs)
    assert await src.list() == []


async def test_a_stale_destination_is_a_failure_and_keeps_the_source() -> None:
    src, dst = MemorySessionStore(), MemorySessionStore(reject_stale=True)
    await src.save("s", snapshot(tick=3))
    await dst.save("s", snapshot(tick=9))
    report = await copy_sessions(src, dst, delete_source=True)
    assert (report.copied, report.skipped, report.deleted) == (0, 0, 0)
    assert [session_id for session_id, _ in report.failures] == ["s"]
    assert "older than the stored tick 9" in report.failures[0][1]
    assert await src.load("s") == snapshot(tick=3)


async def test_a_canary_tells_two_spellings_of_one_s3_endpoint(
    make_s3_store: Any, localstack_s3: Emulator
) -> None:
    """127.0.0.1 and localhost name one LocalStack: nothing may be deleted."""
    source = make_s3_store()
    host = urlsplit(localstack_s3.endpoint).hostname
    other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
    options = dict(localstack_s3.options)
    options["endpoint_url"] = localstack_s3.endpoint.replace(str(host), other)
    await source.save("a", snapshot(tick=1))
    async with S3SessionStore(localstack_s3.bucket, prefix=source.prefix, **options) as alias:
        assert source.place != alias.place  # the spellings differ...
        with pytest.raises(StoreConfigError, match="same store"):  # ...the canary tells
            await copy_sessions(source, alias, delete_source=True)
    assert await source.list() == ["a"]


async def test_the_canary_leaves_nothing_behind(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    await src.save("a", snapshot(tick=1))
    report = await copy_sessions(src, dst, delete_source=True)
    assert (report.copied, report.deleted, report.failures) == (1, 1, [])
    assert await dst.list() == ["a"] and await src.list() == []

"""open_store: schemes, parameters and clear errors."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from sessionstore import FileSessionStore, MemorySessionStore, StoreConfigError, open_store


def test_default_is_the_embedded_file_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SESSIONSTORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    store = open_store()
    assert isinstance(store, FileSessionStore)
    assert store.root == tmp_path / ".sessions"


def test_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSTORE_URL", "memory://?max_size=3")
    store = open_store()
    assert isinstance(store, MemorySessionStore) and store.max_size == 3


def test_file_urls_and_common_options(tmp_path: Path) -> None:
    store = open_store(
        f"file://{tmp_path}?compression=gzip&ttl=60&reject_stale=true&max_snapshot_bytes=99"
        "&prefix=p&retry_attempts=2"
    )
    assert isinstance(store, FileSessionStore)
    assert store.root == tmp_path and store.prefix == "p/"
    assert store.ttl == timedelta(seconds=60) and store.reject_stale
    assert store._codec.compression == "gzip" and store._codec.max_snapshot_bytes == 99
    assert store.retry.attempts == 2
    assert open_store("file:relative/dir").root == Path.cwd() / "relative/dir"  # type: ignore[attr-defined]


def test_keyword_options_override_the_query() -> None:
    store = open_store("memory://?max_size=3", max_size=5)
    assert isinstance(store, MemorySessionStore) and store.max_size == 5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x/", "unknown store URL scheme"),
        ("memory://?bogus=1", "unknown parameter 'bogus'"),
        ("memory://?max_size=-1", "bad value for parameter 'max_size'"),
        ("memory://?ttl=soon", "bad value for parameter 'ttl'"),
        ("memory://?reject_stale=maybe", "reject_stale"),
        ("memory://?compression=lz4", "compression"),
        ("memory://?ttl=1&ttl=2", "given twice"),
        ("memory://somewhere", "takes no location"),
        ("file://otherhost/x", "names host"),
        ("s3:///prefix/", "names no bucket"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        open_store(url)


@pytest.mark.parametrize(
    "query",
    ["sig", "max_size", "ttl", "retry_attempts", "retry_deadline", "compress_min_bytes"],
)
def test_query_values_are_never_echoed(query: str) -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store(f"memory://?{query}=SECRET-VALUE")
    assert "SECRET-VALUE" not in str(info.value)


@pytest.mark.parametrize("ttl", ["1e15", "inf", "-inf", "nan", "1" * 400, "0"])
def test_ttl_out_of_range_is_a_config_error(ttl: str) -> None:
    with pytest.raises(StoreConfigError, match="bad value for parameter 'ttl'"):
        open_store(f"memory://?ttl={ttl}")
    if ttl != "1e15":  # a long deadline is fine; an infinite one is not a number of seconds
        with pytest.raises(StoreConfigError, match="retry_deadline"):
            open_store(f"memory://?retry_deadline={ttl}")


@pytest.mark.parametrize("url", ["file:/tmp/my#sessions", "memory://#x", "file:/d?ttl=5#"])
def test_a_fragment_is_refused(url: str) -> None:
    with pytest.raises(StoreConfigError, match="%23"):
        open_store(url)


def test_bad_keyword_option() -> None:
    with pytest.raises(StoreConfigError, match="bogus"):
        open_store("memory://", bogus=1)


def test_import_loads_no_cloud_sdk() -> None:
    code = (
        "import sys, sessionstore; sessionstore.open_store('memory://');"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " ('boto3', 'botocore', 'aioboto3', 'aiobotocore', 'google', 'azure')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_missing_extra_names_the_pip_command() -> None:
    code = (
        "import sys; sys.modules['aioboto3'] = None; sys.modules['google.cloud.storage'] = None\n"
        "sys.modules['azure.storage.blob.aio'] = None\n"
        "from sessionstore import open_store, StoreConfigError\n"
        "for url, extra in [('s3://b/', 's3'), ('gs://b/', 'gcs'), ('az://c/', 'azure')]:\n"
        "    try:\n"
        "        open_store(url)\n"
        "    except StoreConfigError as e:\n"
        "        assert f\"pip install 'sessionstore[{extra}]'\" in str(e), e\n"
        "    else:\n"
        "        raise SystemExit(url)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

"""open_store: schemes, parameters and clear errors."""

import logging
import math
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionstore import (
    FileSessionStore,
    MemorySessionStore,
    RetryPolicy,
    StoreConfigError,
    open_store,
)
from sessionstore.registry import BUILTIN_PROVIDERS, PROVIDERS
from sessionstore.urlparams import COMMON, Bounded, Duration, UrlParams
from tests.test_registry import readme_example


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


@pytest.mark.parametrize("value", ["660", "0660", "0o660", "0O660"])
def test_file_mode_is_an_octal_url_parameter(tmp_path: Path, value: str) -> None:
    store = open_store(f"file:{tmp_path}?file_mode={value}")
    assert isinstance(store, FileSessionStore) and store.file_mode == 0o660
    assert open_store(f"file:{tmp_path}").file_mode == 0o600  # type: ignore[attr-defined]
    keyword = open_store(f"file:{tmp_path}?file_mode={value}", file_mode=0o640)
    assert keyword.file_mode == 0o640  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "777",
        "755",
        "700",
        "620",
        "400",
        "4660",
        "1660",
        "66",
        "6600",
        "abc",
        "6_60",
        "+660",
        "%20660",
        "0x1b0",
        "0o0o660",
        "432",
        "\uff16\uff16\uff10",  # fullwidth digits
    ],
)
def test_a_bad_file_mode_names_the_parameter_and_the_modes_it_takes(
    tmp_path: Path, value: str
) -> None:
    url = f"file:{tmp_path}?file_mode={value}"
    with pytest.raises(StoreConfigError) as info:
        open_store(url)
    assert str(info.value) == (
        f"bad value for parameter 'file_mode' in 'file:{tmp_path}': expected an octal mode"
        " 6GO with G and O each 0, 4 or 6 (600, 640, 660)"
    )


def test_file_mode_is_a_file_store_parameter() -> None:
    with pytest.raises(StoreConfigError, match="unknown parameter 'file_mode'"):
        open_store("memory://?file_mode=600")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("reject_stale=false", False),
        ("reject_stale=0", False),
        ("reject_stale=no", False),
        ("reject_stale=Off", False),
        ("reject_stale=true", True),
        ("reject_stale=1", True),
        ("reject_stale=YES", True),
        ("reject_stale=on", True),
        ("reject_stale=%20true%20", True),
    ],
    ids=["false", "0", "no", "Off", "true", "1", "YES", "on", "padded"],
)
def test_boolean_parameters(query: str, expected: bool) -> None:
    assert open_store(f"memory://?{query}").reject_stale is expected


def test_retry_parameters_one_at_a_time() -> None:
    default = RetryPolicy()
    assert open_store("memory://").retry == default
    attempts = open_store("memory://?retry_attempts=7").retry
    assert attempts == RetryPolicy(7, default.base_delay, default.max_delay, default.deadline)
    deadline = open_store("memory://?retry_deadline=2.5").retry
    assert deadline == RetryPolicy(default.attempts, default.base_delay, default.max_delay, 2.5)
    both = open_store("memory://?retry_deadline=3&retry_attempts=1").retry
    assert (both.attempts, both.deadline) == (1, 3.0)


def test_compression_and_size_parameters() -> None:
    for text, expected in [("none", None), ("", None), ("gzip", "gzip"), ("zstd", "zstd")]:
        store = open_store(f"memory://?compression={text}")
        assert store._codec.compression == expected
    store = open_store("memory://?compress_min_bytes=0&max_snapshot_bytes=1")
    assert store._codec.compress_min_bytes == 0 and store._codec.max_snapshot_bytes == 1
    assert open_store("memory://?ttl=0.5").ttl == timedelta(seconds=0.5)
    assert open_store("memory://?max_size=1").max_size == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "cls", "location", "prefix"),
    [
        ("s3://bkt/a/b?region=eu-west-1", "S3SessionStore", "s3://bkt", "a/b/"),
        ("s3://bkt", "S3SessionStore", "s3://bkt", "sessions/"),
        ("s3://bkt/", "S3SessionStore", "s3://bkt", "sessions/"),
        ("gs://bkt/a/b/", "GCSSessionStore", "gs://bkt", "a/b/"),
        ("gcs://bkt/a", "GCSSessionStore", "gs://bkt", "a/"),
        ("az://ctr/a/b", "AzureBlobSessionStore", "az://ctr", "a/b/"),
        ("azure://ctr/", "AzureBlobSessionStore", "az://ctr", "sessions/"),
        ("S3://bkt/x%20y/", "S3SessionStore", "s3://bkt", "x y/"),
        ("s3://bkt/ignored/?prefix=q", "S3SessionStore", "s3://bkt", "q/"),
        ("s3://bkt/X", "S3SessionStore", "s3://bkt", "X/"),
    ],
    ids=[
        "s3-prefix",
        "s3-bare",
        "s3-slash",
        "gs-prefix",
        "gcs-alias",
        "az-prefix",
        "azure-alias",
        "upper-scheme-quoted-prefix",
        "prefix-parameter-wins",
        "one-letter-prefix",
    ],
)
def test_cloud_buckets_and_prefixes(url: str, cls: str, location: str, prefix: str) -> None:
    azure = {"connection_string": "UseDevelopmentStorage=true"} if "az" in url else {}
    store = open_store(url, **azure)
    assert type(store).__name__ == cls
    assert store.location == location and store.prefix == prefix


def test_cloud_parameters_reach_the_store() -> None:
    s3 = open_store("s3://b/?region=eu-west-1&endpoint_url=http://127.0.0.1:1&read_timeout=2")
    assert s3.region_name == "eu-west-1"  # type: ignore[attr-defined]
    assert s3.endpoint_url == "http://127.0.0.1:1"  # type: ignore[attr-defined]
    gcs = open_store("gs://b/?project=p&max_workers=3&timeout=4")
    assert (gcs.project, gcs.max_workers, gcs.timeout) == ("p", 3, 4.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    ["file://localhost{root}", "file://{root}", "file:{root}"],
    ids=["localhost", "empty-host", "no-slashes"],
)
def test_file_url_spellings(url: str, tmp_path: Path) -> None:
    store = open_store(url.format(root=tmp_path / "a b"))
    assert isinstance(store, FileSessionStore) and store.root == tmp_path / "a b"


def test_every_cloud_parameter_is_accepted_and_checked() -> None:
    s3 = (
        "s3://b/?region=r&endpoint_url=http://h&sse=aws:kms&sse_kms_key_id=k"
        "&max_pool_connections=8&connect_timeout=1.5&read_timeout=2"
    )
    assert open_store(s3).region_name == "r"  # type: ignore[attr-defined]
    assert open_store("s3://b/?region_name=r2").region_name == "r2"  # type: ignore[attr-defined]
    gcs = open_store("gs://b/?project=p&kms_key_name=k&max_workers=2&timeout=3")
    assert gcs.kms_key_name == "k"  # type: ignore[attr-defined]
    azure = open_store("az://c/?encryption_scope=e", connection_string="UseDevelopmentStorage=true")
    assert azure.encryption_scope == "e"  # type: ignore[attr-defined]
    with pytest.raises(StoreConfigError, match="not both"):  # account_url reaches the store
        open_store("az://c/?account_url=https://a.example/", connection_string="x=y")
    for url in [
        "s3://b/?max_pool_connections=0",
        "s3://b/?connect_timeout=0",
        "s3://b/?read_timeout=-1",
        "s3://b/?sse=",
        "s3://b/?sse_kms_key_id=",
        "s3://b/?endpoint_url=",
        "gs://b/?max_workers=0",
        "gs://b/?timeout=0",
        "gs://b/?project=",
        "gs://b/?kms_key_name=",
        "az://c/?account_url=",
        "az://c/?encryption_scope=",
    ]:
        with pytest.raises(StoreConfigError, match="bad value for parameter"):
            open_store(url)


def test_an_empty_env_var_means_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SESSIONSTORE_URL", "")
    monkeypatch.chdir(tmp_path)
    store = open_store()
    assert isinstance(store, FileSessionStore) and store.root == tmp_path / ".sessions"


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [("aiobotocore", "s3://b/", "s3"), ("azure.storage.blob.aio", "az://c/", "azure")],
    ids=["s3", "azure"],
)
def test_missing_extra_in_process(
    monkeypatch: pytest.MonkeyPatch, module: str, url: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    monkeypatch.delitem(sys.modules, f"sessionstore.stores.{extra}", raising=False)
    with pytest.raises(StoreConfigError) as info:
        open_store(url)
    assert str(info.value) == (
        f"{url!r} needs the {extra} extra ({module} is not installed):"
        f" pip install 'sessionstore[{extra}]'"
    )


def test_keyword_options_override_the_query() -> None:
    store = open_store("memory://?max_size=3", max_size=5)
    assert isinstance(store, MemorySessionStore) and store.max_size == 5


BAD_URLS = [
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
    ("s3://bkt/a//", "has an empty, '.' or '..' segment"),
    ("gs://bkt/a/./", "has an empty, '.' or '..' segment"),
    ("gs://", "names no bucket"),
    ("az:///x", "names no container"),
    ("file://", "has no directory"),
    ("memory:///x", "takes no location"),
    ("memory:///X", "takes no location"),
    ("memory://?a", "malformed query"),
    ("memory://?=1", "unknown parameter ''"),
    ("memory://?ttl=1&&ttl=2", "malformed query"),
    ("memory://?ttl=0", "bad value for parameter 'ttl'"),
    ("memory://?ttl=-1", "bad value for parameter 'ttl'"),
    ("memory://?ttl=nan", "bad value for parameter 'ttl'"),
    ("memory://?max_size=0", "bad value for parameter 'max_size'"),
    ("memory://?compress_min_bytes=-1", "bad value for parameter 'compress_min_bytes'"),
    ("memory://?retry_attempts=0", "bad value for parameter 'retry_attempts'"),
    ("memory://?retry_deadline=0", "bad value for parameter 'retry_deadline'"),
    ("memory://?compression=GZIP", "expected gzip, zstd or none"),
    ("s3://b/?region=", "parameter 'region' in 's3://b/': expected a value"),
    ("s3://b/?region=a&region_name=b", "given twice"),
    ("s3://b/?max_size=1", "unknown parameter 'max_size'"),
    ("gs://b/?region=x", "unknown parameter 'region'"),
]


@pytest.mark.parametrize(
    ("url", "message"),
    BAD_URLS,
    ids=[re.sub(r"[^A-Za-z0-9_=&.-]+", "-", url) for url, _ in BAD_URLS],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        open_store(url)


@pytest.mark.parametrize(
    "query",
    [
        "sig",
        "max_size",
        "ttl",
        "retry_attempts",
        "retry_deadline",
        "compress_min_bytes",
        "max_size=1?sig",  # a second '?' is part of the query, not the end of it
    ],
)
def test_query_values_are_never_echoed(query: str) -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store(f"memory://?{query}=SECRET-VALUE")
    assert "SECRET-VALUE" not in str(info.value)
    assert "in 'memory://'" in str(info.value)


def test_a_location_free_url_may_end_in_a_slash() -> None:
    assert isinstance(open_store("memory:///"), MemorySessionStore)


@pytest.mark.parametrize("ttl", ["1e15", "inf", "-inf", "nan", "1" * 400, "0"])
def test_ttl_out_of_range_is_a_config_error(ttl: str) -> None:
    with pytest.raises(StoreConfigError, match="bad value for parameter 'ttl'"):
        open_store(f"memory://?ttl={ttl}")
    with pytest.raises(StoreConfigError, match="retry_deadline"):
        open_store(f"memory://?retry_deadline={ttl}")


@pytest.mark.parametrize("url", ["file:/tmp/my#sessions", "memory://#x", "file:/d?ttl=5#"])
def test_a_fragment_is_refused(url: str) -> None:
    with pytest.raises(StoreConfigError, match="%23"):
        open_store(url)


def test_a_fragment_is_not_shown_even_with_a_second_hash() -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store("file:/tmp/my#SECRET#x?ttl=5")
    assert "'file:/tmp/my' has a '#' fragment" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_unknown_parameter_lists_what_the_store_takes() -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store("memory://?bogus=1")
    assert str(info.value) == (
        "unknown parameter 'bogus' in 'memory://'; MemorySessionStore takes: compress_min_bytes,"
        " compression, max_size, max_snapshot_bytes, prefix, reject_stale, retry_attempts,"
        " retry_deadline, ttl"
    )


def test_url_must_be_a_string() -> None:
    with pytest.raises(StoreConfigError, match="must be a str, not bytes"):
        open_store(b"memory://")  # type: ignore[arg-type]


def test_bad_keyword_option() -> None:
    with pytest.raises(StoreConfigError, match="bogus"):
        open_store("memory://", bogus=1)


def test_import_loads_no_cloud_sdk_and_no_agent_framework() -> None:
    # Modules already there at startup don't count: functions-framework's wheel (the
    # examples extra) ships a *-nspkg.pth that creates the empty `google` and
    # `google.cloud` namespace packages in every interpreter.
    code = (
        "import sys; before = set(sys.modules);"
        "import sessionstore, sessionstore.integrations; sessionstore.open_store('memory://');"
        "bad = [m for m in set(sys.modules) - before if m.split('.')[0] in"
        " ('boto3', 'botocore', 'aioboto3', 'aiobotocore', 'google', 'azure', 'agents',"
        " 'openai')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_built_in_schemes_read_no_entry_points() -> None:
    # importlib.metadata costs a cold start about 25 ms; only an unknown scheme needs it.
    code = (
        "import sys; before = set(sys.modules);"
        "import sessionstore; sessionstore.open_store('memory://');"
        "sessionstore.open_store_sync('file:///tmp').close();"
        "bad = 'importlib.metadata' in set(sys.modules) - before;"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_missing_extra_names_the_pip_command() -> None:
    code = (
        "import sys; sys.modules['aiobotocore'] = None\n"
        "sys.modules['google.cloud.storage'] = None\n"
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


def _exception_chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every exception in its ``__cause__`` / ``__context__`` chains."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


@pytest.mark.parametrize("scheme", sorted({*PROVIDERS, *(s.upper() for s in PROVIDERS)}))
@pytest.mark.parametrize(
    "user_info",
    [
        "AKID4711:s3cr3tPW@",
        "s3cr3tPW@",
        ":s3cr3tPW@",
        "AKID4711%3As3cr3tPW@",
        "AKID4711:s3cr3tPW%40",
        "AKID4711:s3cr@tPW@",
    ],
)
def test_user_information_is_refused_and_never_shown(
    scheme: str, user_info: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"{scheme}://{user_info}place/p/?compression=gzip"
    with pytest.raises(StoreConfigError, match="carries user information") as info:
        open_store(url)
    hint = PROVIDERS[scheme.lower()].credentials
    assert str(info.value).endswith(hint)
    shown = [caplog.text, *(r.getMessage() for r in caplog.records)]
    for exc in _exception_chain(info.value):
        shown += [str(exc), repr(exc), *map(repr, exc.args)]
    for secret in ("AKID4711", "s3cr", "tPW"):
        assert not [text for text in shown if secret in text]


def test_user_information_with_an_unknown_scheme_is_refused_with_the_generic_hint() -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store("nosuch://AKID4711:s3cr3tPW@place/")
    assert str(info.value).startswith("the nosuch:// store URL carries user information")
    assert str(info.value).endswith(
        "which sessionstore never reads: use the SDK's own credential chain"
    )
    assert "s3cr3tPW" not in str(info.value)


@pytest.mark.parametrize("scheme", sorted(PROVIDERS))
@pytest.mark.parametrize("user_info", [":@", "@", "user@"])
def test_even_empty_user_information_is_refused(scheme: str, user_info: str) -> None:
    with pytest.raises(StoreConfigError, match=f"the {scheme}:// store URL carries user info"):
        open_store(f"{scheme}://{user_info}place/")


@pytest.mark.parametrize(
    "url",
    [
        "s3://KEY:SE[CRET@b/",
        "gs://KEY:SEC\uff03RET@b/",
        "s3://KEY#:SECRET@b/",
        "s3://b/?x=KEY:SECRET@",
        "s3://b/?x=SECRET&&",
    ],
    ids=["bracket", "nfkc-hash", "fragment", "query", "malformed-query"],
)
def test_a_url_that_does_not_parse_is_not_shown(url: str) -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store(url)
    for exc in _exception_chain(info.value):
        assert "SECRET" not in str(exc) and "SECRET" not in repr(exc)


def test_user_information_is_refused_before_the_extra_is_imported() -> None:
    code = (
        "import sys; sys.modules['aiobotocore'] = None\n"
        "from sessionstore import open_store, StoreConfigError\n"
        "try:\n"
        "    open_store('s3://AKID4711:s3cr3tPW@b/')\n"
        "except StoreConfigError as e:\n"
        "    assert 'user information' in str(e) and 's3cr3tPW' not in str(e), e\n"
        "else:\n"
        "    raise SystemExit('opened')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


_AZURE = {"connection_string": "UseDevelopmentStorage=true"}
_RETRY_FIELDS = {"retry_attempts": "attempts", "retry_deadline": "deadline"}


def _params(scheme: str) -> UrlParams:
    return {**COMMON, **PROVIDERS[scheme].load(scheme).url_params}


_EVERY_PARAM = [(scheme, name) for scheme in sorted(BUILTIN_PROVIDERS) for name in _params(scheme)]


def _base_url(scheme: str) -> str:
    """A query-free URL of ``scheme``: its example in the README (tests/test_registry)."""
    return readme_example(scheme)[0].split("?", 1)[0]


@pytest.mark.parametrize(("scheme", "name"), _EVERY_PARAM)
def test_every_numeric_parameter_has_a_range(scheme: str, name: str) -> None:
    convert = _params(scheme)[name]
    try:
        value = convert("1")
    except ValueError:
        return  # takes no number
    if isinstance(value, int | float | timedelta) and not isinstance(value, bool):
        assert isinstance(convert, Bounded), f"{name} of {scheme}:// is a number with no range"
        assert math.isfinite(convert.high) and convert.high < 2**63


def _in_and_out(bounds: Bounded) -> tuple[list[float], list[Any]]:
    """Values just inside and just outside ``bounds``."""
    step = 1 if bounds.integer else max(0.001, bounds.high * 1e-9)
    inside = [bounds.low + step if bounds.low_open else bounds.low, bounds.high]
    outside: list[Any] = [bounds.low if bounds.low_open else bounds.low - step]
    outside += [bounds.high + step, bounds.high * 2 + 1]
    return inside, outside


def _options(scheme: str, **options: Any) -> dict[str, Any]:
    return {**(_AZURE if scheme.startswith("az") else {}), **options}


@pytest.mark.parametrize(("scheme", "name"), _EVERY_PARAM)
def test_numeric_parameters_are_checked_against_their_range(scheme: str, name: str) -> None:
    bounds = _params(scheme)[name]
    if not isinstance(bounds, Bounded):
        return
    url = _base_url(scheme) + "?" + name + "="
    inside, outside = _in_and_out(bounds)
    texts = [repr(v) for v in outside] + ["1e300", "-1e300", "inf", "nan", "1" * 5000]
    if bounds.integer:
        texts.append("1.5")
    for text in texts:
        with pytest.raises(StoreConfigError) as info:
            open_store(url + text, **_options(scheme))
        assert f"bad value for parameter {name!r}" in str(info.value)
        assert f"expected {bounds.allowed}" in str(info.value)
    for value in inside:
        open_store(url + repr(value), **_options(scheme))
    # The same range for the keyword argument the parameter fills.
    keyword = _RETRY_FIELDS.get(name) or PROVIDERS[scheme].load(scheme).url_aliases.get(name, name)

    def build(value: Any) -> None:
        if name in _RETRY_FIELDS:
            options = {"retry": RetryPolicy(**{keyword: value})}
        elif isinstance(bounds, Duration):
            options = {keyword: timedelta(seconds=value)}
        else:
            options = {keyword: value}
        open_store(_base_url(scheme), **_options(scheme, **options))

    for value in inside:
        build(value)
    if isinstance(bounds, Duration):
        return  # a timedelta cannot hold more; its own checks refuse 0 and less
    for value in [*outside, 1e300, math.nan, math.inf, True]:
        with pytest.raises(StoreConfigError) as info:
            build(value)
        shown = f"RetryPolicy.{keyword}" if name in _RETRY_FIELDS else keyword
        assert f"{shown} must be {bounds.allowed}, not {value!r}" in str(info.value)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("s3://b/?read_timeout=1e300", "a number of seconds > 0 and <= 3600"),
        ("s3://b/?connect_timeout=1e12", "a number of seconds > 0 and <= 3600"),
        ("gs://b/?timeout=1e300", "a number of seconds > 0 and <= 3600"),
        ("s3://b/?max_pool_connections=4096", "an int in 1..1024"),
        ("memory://?retry_attempts=1000001", "an int in 1..1000000"),
        ("memory://?max_snapshot_bytes=5368709121", "an int in 1..5368709120"),
        ("memory://?ttl=1e300", "a number of seconds > 0 and <= 86399999913600 (999999999 days)"),
    ],
)
def test_the_issue_s_absurd_numbers_name_the_parameter_and_range(url: str, allowed: str) -> None:
    name = url.split("?")[1].split("=")[0]
    with pytest.raises(StoreConfigError) as info:
        open_store(url)
    assert str(info.value) == (
        f"bad value for parameter {name!r} in {url.split('?')[0]!r}: expected {allowed}"
    )


def test_a_range_with_fractional_bounds_shows_them_as_written() -> None:
    # Bounded is what a store declares its numeric parameters with; a bound that is
    # not a whole number is shown as such, a whole one without ".0".
    assert Bounded(integer=False, low=0.5, high=2.5, unit="seconds").allowed == (
        "a number of seconds >= 0.5 and <= 2.5"
    )
    assert Bounded(integer=False, low=0.0, high=2.0).allowed == "a number >= 0 and <= 2"

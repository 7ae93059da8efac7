"""The `sessionstore` command, driven as a subprocess."""

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sessionstore import FileSessionStore
from sessionstore.registry import PROVIDERS
from tests.contract import snapshot


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "sessionstore", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/store"


def test_put_get_ls_stat_rm(url: str, tmp_path: Path) -> None:
    (tmp_path / "snap.json").write_text(json.dumps(snapshot("a", 4)))
    assert run("put", url, "a", str(tmp_path / "snap.json")).returncode == 0
    assert run("put", url, "b/c", stdin=json.dumps(snapshot("b", 2))).returncode == 0
    got = run("get", url, "a")
    assert got.returncode == 0 and json.loads(got.stdout) == snapshot("a", 4)
    assert run("ls", url).stdout.split() == ["a", "b/c"]
    long = json.loads(run("ls", url, "--long", "--json").stdout)
    assert [(r["id"], r["tick"]) for r in long] == [("a", 4), ("b/c", 2)]
    assert all(r["size"] > 0 and r["last_modified"] for r in long)
    stat = run("stat", url).stdout
    assert "sessions: 2" in stat and "oldest:" in stat
    conflict = run("put", url, "a", "--if-absent", stdin=json.dumps(snapshot()))
    assert conflict.returncode == 1 and "already exists" in conflict.stderr
    assert run("rm", url, "a", "b/c", "--yes").returncode == 0
    assert run("ls", url).stdout == ""
    missing = run("get", url, "a")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_put_validates_before_writing(url: str) -> None:
    for bad in ["not json", "[1, 2]", '{"x": NaN}', '{"x": -Infinity}']:
        result = run("put", url, "s", stdin=bad)
        assert result.returncode == 2, bad
        assert "error" in result.stderr and "Traceback" not in result.stderr
    assert run("ls", url).stdout == ""


def test_hostile_values_are_clear_errors_with_exit_2(url: str) -> None:
    deep = run("put", url, "s", stdin="[" * 100_000)
    huge = run("purge-expired", url, "--ttl", "99999999999d")
    zero = run("purge-expired", url, "--ttl", "0")
    query = run("ls", "memory://?ttl=1e15")
    too_deep = run("put", url, "s", stdin='{"a": ' + "[" * 300 + "]" * 300 + "}")
    for result, message in [
        (deep, "nests too deeply"),
        (too_deep, "nests more than 254"),
        (huge, "the longest ttl is 999999999d"),
        (zero, "longer than 0"),
        (query, "bad value for parameter 'ttl'"),
    ]:
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert run("ls", url).stdout == ""


def test_purge_expired(url: str, tmp_path: Path) -> None:
    run("put", url, "old", stdin=json.dumps(snapshot()))
    old = tmp_path / "store" / "old.json"
    os.utime(old, (1_000_000_000, 1_000_000_000))
    run("put", url, "new", stdin=json.dumps(snapshot()))
    result = run("purge-expired", url, "--ttl", "30d")
    assert result.returncode == 0 and "deleted 1" in result.stdout
    assert run("ls", url).stdout.split() == ["new"]
    assert run("purge-expired", url, "--ttl", "soon").returncode == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ls", "ftp://x/"], 2, "unknown store URL scheme"),
        (["ls", "memory://?bogus=1"], 2, "unknown parameter"),
        (["ls", "file:///proc/1/root/nope"], 3, "refused"),
        (["get"], 2, "Missing argument"),
    ],
)
def test_errors_have_clear_messages_and_codes(args: list[str], code: int, message: str) -> None:
    result = run(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_extra_exit_code() -> None:
    code = (
        "import sys; sys.modules['aiobotocore'] = None\n"
        "from sessionstore.cli import main; sys.exit(main(['ls', 's3://bucket/']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2 and "pip install 'sessionstore[s3]'" in result.stderr


def test_cloud_errors_map_to_exit_codes() -> None:
    pytest.importorskip("aioboto3")
    closed = "s3://bucket/p?region=us-east-1&endpoint_url=http://127.0.0.1:1"
    no_credentials = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    refused = run("ls", closed, env=no_credentials)
    assert refused.returncode == 3 and "credentials" in refused.stderr
    down = run("ls", closed, env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    assert down.returncode == 4 and "unavailable" in down.stderr
    for result in (refused, down):
        assert "Traceback" not in result.stderr


def test_without_click_the_command_says_how_to_install_it() -> None:
    code = (
        "import runpy, sys; sys.modules['click'] = None\n"
        "runpy.run_module('sessionstore', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pip install 'sessionstore[cli]'" in result.stderr


def test_import_sessionstore_does_not_import_click() -> None:
    code = "import sys, sessionstore; print('click' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize(
    "command", ["ls", "get", "put", "rm", "stat", "purge-expired", "cp", "demo"]
)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0 and "Example: sessionstore" in result.stdout


def test_demo(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionstore", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SESSIONSTORE_URL"},
    )
    assert result.returncode == 0 and "demo ok" in result.stdout
    assert (tmp_path / ".sessions").is_dir()


WITHOUT_CLICK = (
    "import runpy, sys; sys.modules['click'] = None; sys.argv[0] = 'sessionstore';"
    " runpy.run_module('sessionstore', run_name='__main__')"
)


def test_demo_runs_without_the_cli_extra(tmp_path: Path) -> None:
    def without_click(*args: str) -> Any:
        return subprocess.run(
            [sys.executable, "-c", WITHOUT_CLICK, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "SESSIONSTORE_URL"},
        )

    result = without_click("demo")
    assert result.returncode == 0 and "demo ok" in result.stdout, result.stderr
    assert (tmp_path / ".sessions").is_dir()
    result = without_click("demo", "nope://x")
    assert result.returncode == 2 and "nope" in result.stderr and "Traceback" not in result.stderr
    result = without_click("ls")
    assert result.returncode == 2 and "pip install 'sessionstore[cli]'" in result.stderr


async def test_cp_resumes_and_deletes_only_verified_sources(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    for i in range(30):
        await src.save(f"s{i:02d}", snapshot(f"s{i:02d}", i))
    src_url, dst_url = f"file://{tmp_path}/src", f"file://{tmp_path}/dst"
    first = run("cp", src_url, dst_url, "--ids", "s00", "--ids", "s01")
    assert first.returncode == 0 and "copied 2, skipped 0, failed 0" in first.stdout
    second = run("cp", src_url, dst_url, "-j", "4")
    assert second.returncode == 0 and "copied 28, skipped 2, failed 0" in second.stdout
    assert "progress 30/30: copied 28, skipped 2, failed 0" in second.stderr
    same = run("cp", src_url, f"file://{tmp_path}/src/", "--delete-source")
    assert same.returncode == 2 and "same store" in same.stderr
    moved = run("cp", src_url, dst_url, "--delete-source")
    assert moved.returncode == 0 and "skipped 30" in moved.stdout
    assert "deleted from source 30" in moved.stdout
    assert await src.list() == []
    assert [await dst.load(f"s{i:02d}") for i in range(30)] == [
        snapshot(f"s{i:02d}", i) for i in range(30)
    ]
    failed = run("cp", src_url, dst_url, "--ids", "nope")
    assert failed.returncode == 1 and "failed 'nope': not found" in failed.stderr


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("{d}", "{d}/sub/.."),
        ("{d}?prefix=p", "{d}/p"),
        ("{d}/p", "{d}/link"),
        ("{d}", "memory://"),
    ],
)
async def test_cp_delete_source_onto_the_same_place_deletes_nothing(
    tmp_path: Path, src: str, dst: str
) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "link").symlink_to(d / "p")
    stores = [FileSessionStore(d), FileSessionStore(d / "p")]
    for store in stores:
        await store.save("a", snapshot(tick=1))
        await store.save("b", snapshot(tick=2))
    src_url = "file:" + src.format(d=d)
    dst_url = dst if dst == "memory://" else "file:" + dst.format(d=d)
    result = run("cp", src_url, dst_url, "--delete-source")
    assert result.returncode == 2, result.stdout + result.stderr
    message = "lose every session" if dst == "memory://" else "same store"
    assert message in result.stderr and "Traceback" not in result.stderr
    for store in stores:
        assert await store.list() == ["a", "b"]
        assert [p.name for p in (d / "p").iterdir() if "canary" in p.name] == []


async def test_ls_escapes_invisible_characters_and_rm_says_what_was_absent(url: str) -> None:
    store = FileSessionStore(url.removeprefix("file://"))
    for session_id in ("a\nb", "plain", "rtl\u202eevil", '"quoted'):
        await store.save(session_id, snapshot())
    assert run("ls", url).stdout.splitlines() == [
        '"\\"quoted"',
        '"a\\nb"',
        "plain",
        '"rtl\\u202eevil"',
    ]
    result = run("rm", url, "plain", "nosuch", "--yes")
    assert result.returncode == 1
    assert result.stdout == "deleted 'plain'\n"
    assert "'nosuch' not found" in result.stderr
    assert await store.list() == ['"quoted', "a\nb", "rtl\u202eevil"]


async def test_cp_if_absent_keeps_the_destination(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    await src.save("a", snapshot(tick=1))
    await dst.save("a", snapshot(tick=9))
    result = run("cp", f"file://{tmp_path}/src", f"file://{tmp_path}/dst", "--if-absent")
    assert result.returncode == 0 and "skipped 1" in result.stdout
    loaded = await dst.load("a")
    assert loaded is not None and loaded["tick"] == 9


async def test_cp_keeps_a_newer_destination_unless_told_to_overwrite(tmp_path: Path) -> None:
    src, dst = FileSessionStore(tmp_path / "src"), FileSessionStore(tmp_path / "dst")
    await src.save("s1", snapshot("s1", 7))
    await dst.save("s1", snapshot("s1", 999))
    args = ["cp", f"file://{tmp_path}/src", f"file://{tmp_path}/dst", "--delete-source"]
    kept = run(*args)
    assert kept.returncode == 1, kept.stderr
    assert "copied 0, skipped 0, failed 1, deleted from source 0" in kept.stdout
    assert "failed 's1': conflict: the destination holds a different session at tick 999" in (
        kept.stderr
    )
    assert await dst.load("s1") == snapshot("s1", 999)
    assert await src.load("s1") == snapshot("s1", 7)
    both = run(*args, "--if-absent", "--overwrite")
    assert both.returncode == 2 and "exclude each other" in both.stderr
    replaced = run(*args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert "copied 1, skipped 0, failed 0, deleted from source 1" in replaced.stdout
    assert await dst.load("s1") == snapshot("s1", 7) and await src.list() == []
    assert "--overwrite" in run("cp", "--help").stdout


def _cloud_env(fake_gcs: Any, azurite: Any) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "STORAGE_EMULATOR_HOST": fake_gcs.endpoint,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.options["connection_string"],
    }


async def test_cp_2000_sessions_across_every_cloud(
    make_s3_store: Any,
    make_gcs_store: Any,
    make_azure_store: Any,
    tmp_path: Path,
    localstack_s3: Any,
    fake_gcs: Any,
    azurite: Any,
) -> None:
    """S3 -> GCS -> Azure -> file through the real command; the end equals the start."""
    s3, gcs, az = make_s3_store(), make_gcs_store(), make_azure_store()
    sessions = {f"sess-{i:04d}": snapshot(f"sess-{i:04d}", i) for i in range(2000)}
    urls = [
        f"s3://{localstack_s3.bucket}/{s3.prefix}?region=us-east-1"
        f"&endpoint_url={localstack_s3.endpoint}",
        f"gs://{fake_gcs.bucket}/{gcs.prefix}?project=test",
        f"az://{azurite.bucket}/{az.prefix}",
        f"file://{tmp_path}/end",
    ]
    sem = asyncio.Semaphore(16)

    async def on_each(action: Callable[[str], Awaitable[object]]) -> None:
        async def one(session_id: str) -> None:
            async with sem:
                await action(session_id)

        await asyncio.gather(*(one(i) for i in sessions))

    try:
        started = time.monotonic()
        await on_each(lambda i: s3.save(i, sessions[i]))
        print(f"\nseed s3 with 2000 sessions: {time.monotonic() - started:.1f} s")
        for src, dst in itertools.pairwise(urls):
            started = time.monotonic()
            result = await asyncio.to_thread(run, "cp", src, dst, env=_cloud_env(fake_gcs, azurite))
            assert result.returncode == 0, result.stderr
            assert "copied 2000, skipped 0, failed 0" in result.stdout
            assert "progress 2000/2000" in result.stderr
            hop = f"{src.split(':')[0]} -> {dst.split(':')[0]}"
            print(f"cp {hop}: {time.monotonic() - started:.1f} s")
        end = FileSessionStore(tmp_path / "end")
        assert await end.list() == sorted(sessions)
        for session_id, snap in sessions.items():
            assert await end.load(session_id) == snap
    finally:  # the fixtures purge one object at a time: empty the prefixes faster first
        for store in (s3, gcs, az):
            await on_each(store.delete)


async def test_cp_delete_source_between_clouds(
    make_azure_store: Any, make_gcs_store: Any, fake_gcs: Any, azurite: Any
) -> None:
    """Azure -> GCS moving 50 sessions: all copied and verified, the source left empty."""
    az, gcs = make_azure_store(), make_gcs_store()
    sessions = {f"m/{i:02d}": snapshot(f"m/{i:02d}", i) for i in range(50)}
    await asyncio.gather(*(az.save(k, v) for k, v in sessions.items()))
    await gcs.save("m/00", sessions["m/00"])  # already there: skipped, then deleted
    args = [
        f"az://{azurite.bucket}/{az.prefix}",
        f"gs://{fake_gcs.bucket}/{gcs.prefix}?project=test",
    ]
    result = await asyncio.to_thread(
        run, "cp", *args, "--delete-source", "-j", "8", env=_cloud_env(fake_gcs, azurite)
    )
    assert result.returncode == 0, result.stderr
    assert "copied 49, skipped 1, failed 0, deleted from source 50" in result.stdout
    assert await az.list() == []
    assert {k: await gcs.load(k) for k in sessions} == sessions


@pytest.mark.parametrize("scheme", sorted(PROVIDERS))
def test_a_url_with_credentials_is_refused_and_never_shown(scheme: str) -> None:
    url = f"{scheme}://AKID4711:s3cr3tPW@place/p/"
    for args in (["ls", url], ["get", url, "s"], ["cp", "memory://", url]):
        result = run(*args)
        assert result.returncode == 2, result.stderr
        assert "carries user information" in result.stderr
        assert PROVIDERS[scheme].credentials in result.stderr
        output = result.stdout + result.stderr
        assert "AKID4711" not in output and "s3cr3tPW" not in output


_NOT_UTF8 = {  # stdout, stdin and argv of the child in an encoding other than UTF-8
    "C": {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0"},
    "POSIX": {"LC_ALL": "POSIX", "PYTHONCOERCECLOCALE": "0"},
    # Not installed on every machine (then it is the C locale: ASCII).
    "ISO-8859-1": {"LC_ALL": "en_US.ISO-8859-1", "PYTHONCOERCECLOCALE": "0"},
    "latin-1-stdio": {"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "latin-1"},
}
_UNICODE_SESSIONS = {
    "a": {"tick": 1, "m": "\u2713 done"},
    "b-h\u00e9llo": {"tick": 2, "m": "h\u00e9llo"},
    "c-\u4f1a\u8bdd": {"tick": 3, "m": "\u4f1a\u8bdd \u2713"},
    "d": {"tick": 4},
}


def _run_in_locale(locale: str, *args: str, stdin: bytes | None = None) -> Any:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE", "PYTHONIOENCODING")
    }
    env.update(_NOT_UTF8[locale], PYTHONUTF8="0")
    return subprocess.run(
        [sys.executable, *args], input=stdin, capture_output=True, env=env, timeout=600
    )


def _shown(line: str) -> str:
    """An id as `ls` shows it: as is, or quoted with JSON-style escapes."""
    return json.loads(line) if line.startswith('"') else line


@pytest.mark.parametrize("locale", sorted(_NOT_UTF8))
def test_get_put_ls_speak_utf8_whatever_the_locale(locale: str, tmp_path: Path) -> None:
    probe = "import sys; print(sys.stdout.encoding, sys.flags.utf8_mode)"
    encoding, utf8_mode = _run_in_locale(locale, "-c", probe).stdout.decode().split()
    assert encoding.lower().replace("-", "") != "utf8" and utf8_mode == "0"  # really not UTF-8

    async def seed() -> None:
        async with FileSessionStore(tmp_path / "store") as store:
            for session_id, snap in _UNICODE_SESSIONS.items():
                await store.save(session_id, snap)

    asyncio.run(seed())
    url = f"file://{tmp_path}/store"
    for session_id, snap in _UNICODE_SESSIONS.items():
        got = _run_in_locale(locale, "-m", "sessionstore", "get", url, session_id)
        assert got.returncode == 0, got.stderr.decode(errors="replace")
        assert json.loads(got.stdout.decode("utf-8")) == snap  # UTF-8 JSON, not the locale's
        (tmp_path / "snap.json").write_bytes(got.stdout)
        for args, stdin in [([str(tmp_path / "snap.json")], None), ([], got.stdout)]:
            put = _run_in_locale(
                locale, "-m", "sessionstore", "put", url, f"{session_id}-{len(args)}", *args,
                stdin=stdin,
            )  # fmt: skip
            assert put.returncode == 0, put.stderr.decode(errors="replace")
    copies = sorted(f"{i}-{n}" for i in _UNICODE_SESSIONS for n in (0, 1))
    every_id = sorted([*_UNICODE_SESSIONS, *copies])
    listed = _run_in_locale(locale, "-m", "sessionstore", "ls", url)
    assert listed.returncode == 0, listed.stderr.decode(errors="replace")
    assert [_shown(line) for line in listed.stdout.decode(encoding).splitlines()] == every_id
    long = _run_in_locale(locale, "-m", "sessionstore", "ls", "--long", url)
    assert long.returncode == 0, long.stderr.decode(errors="replace")
    rows = long.stdout.decode(encoding).splitlines()
    assert [_shown(row.split("  ")[-1]) for row in rows] == every_id
    stat = _run_in_locale(locale, "-m", "sessionstore", "stat", url)
    assert stat.returncode == 0 and b"sessions: 12" in stat.stdout

    async def copies_are_equal() -> None:
        async with FileSessionStore(tmp_path / "store") as store:
            for copy in copies:
                assert await store.load(copy) == _UNICODE_SESSIONS[copy[:-2]], copy

    asyncio.run(copies_are_equal())


def test_not_found_messages_show_no_query_value(url: str) -> None:
    secret_url = url + "?prefix=s3cr3tPW"  # any query value may be a secret (a SAS)
    for args in (["get", secret_url, "s"], ["rm", secret_url, "s", "--yes"]):
        result = run(*args)
        assert result.returncode == 1 and "not found in" in result.stderr
        assert "s3cr3tPW" not in result.stdout + result.stderr

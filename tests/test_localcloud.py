"""sessionstore.localcloud on real emulators, in private run directories.

fake-gcs-server is the emulator these tests start (it starts in about a second); the
installs come from the per-user cache that ``scripts/test`` warmed. The whole cloud,
started by the pytest plugin from the built wheel, is tested in test_user_project.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionstore.localcloud import LocalCloud, LocalCloudError, by_name, cache_home, cloud
from sessionstore.localcloud.processes import alive

FAKE_GCS = by_name("fake-gcs")
MOTO = by_name("moto")
#: The warmed install cache, fixed before pytester moves HOME (which would move it too,
#: and make every plugin test install the emulators afresh).
CACHE = cache_home()


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private run directory; whatever was started in it is stopped afterwards."""
    run = tmp_path / "run"
    monkeypatch.setenv("SESSIONSTORE_LOCALCLOUD_RUN", str(run))
    monkeypatch.setenv("SESSIONSTORE_LOCALCLOUD_CACHE", str(CACHE))
    for emulator in ("LOCALSTACK_S3_PORT", "FAKE_GCS_PORT", "AZURITE_BLOB_PORT", "MOTO_S3_PORT"):
        monkeypatch.delenv(emulator, raising=False)
    yield run
    LocalCloud(run).down()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port that a process other than the local cloud listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def localcloud(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sessionstore.localcloud ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "sessionstore.localcloud", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _evaluated(stdout: str, *names: str) -> dict[str, str]:
    """The variables ``names`` after bash has run ``eval`` on ``stdout``."""
    script = 'eval "$1"; shift; for n in "$@"; do printf "%s=%s\\0" "$n" "${!n-UNSET}"; done'
    out = subprocess.run(
        ["bash", "-c", script, "bash", stdout, *names],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
        timeout=60,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if item)


def test_env_exports_nothing_while_nothing_runs(run_dir: Path, taken_port: int) -> None:
    result = localcloud("env")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "nothing to export" in result.stderr
    # A foreign server on an emulator's port is not this cloud's emulator.
    foreign = localcloud("env", env={**os.environ, "FAKE_GCS_PORT": str(taken_port)})
    assert foreign.stdout == ""


def test_env_all_prints_every_emulator_for_a_cloud_run_elsewhere(run_dir: Path) -> None:
    result = localcloud("env", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "export AWS_ENDPOINT_URL=http://127.0.0.1:4566",
        "export AWS_ACCESS_KEY_ID=test",
        "export AWS_SECRET_ACCESS_KEY=test",
        "export AWS_DEFAULT_REGION=us-east-1",
        "export STORAGE_EMULATOR_HOST=http://127.0.0.1:9023",
        "export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=http;"
        "AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u"
        "SRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;'",
        "export SESSIONSTORE_TEST_BUCKET=sessionstore-test",
        "export SESSIONSTORE_TEST_MOTO_ENDPOINT=http://127.0.0.1:5000",
    ]
    command = [sys.executable, "-m", "sessionstore", "localcloud", "env", "--all"]  # cli extra
    same = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    assert same.stdout == result.stdout


def test_up_and_env_export_only_the_emulators_that_run(run_dir: Path) -> None:
    up = localcloud("up", "fake-gcs")
    assert up.returncode == 0, up.stderr
    port = LocalCloud(run_dir).port(FAKE_GCS)
    variables = ("STORAGE_EMULATOR_HOST", "SESSIONSTORE_TEST_BUCKET", "AWS_ENDPOINT_URL",
                 "AZURE_STORAGE_CONNECTION_STRING", "SESSIONSTORE_TEST_MOTO_ENDPOINT")  # fmt: skip
    for printed in (up.stdout, localcloud("env").stdout):
        assert _evaluated(printed, *variables) == {
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
            "SESSIONSTORE_TEST_BUCKET": "sessionstore-test",
            "AWS_ENDPOINT_URL": "UNSET",
            "AZURE_STORAGE_CONNECTION_STRING": "UNSET",
            "SESSIONSTORE_TEST_MOTO_ENDPOINT": "UNSET",
        }


def test_exports_are_safe_to_eval(run_dir: Path) -> None:
    LocalCloud(run_dir).up(["fake-gcs"])
    hostile = "x'; echo INJECTED; '$(echo also) \"`echo more`\" \\ \n end"
    result = localcloud("env", env={**os.environ, "SESSIONSTORE_TEST_BUCKET": hostile})
    assert result.returncode == 0, result.stderr
    assert _evaluated(result.stdout, "SESSIONSTORE_TEST_BUCKET") == {
        "SESSIONSTORE_TEST_BUCKET": hostile
    }


def test_last_holder_out_stops_it(run_dir: Path) -> None:
    first, second = subprocess.Popen(["sleep", "600"]), subprocess.Popen(["sleep", "600"])
    try:
        local = LocalCloud(run_dir)
        local.up(["fake-gcs"], holder=first.pid)
        pid = local.pid(FAKE_GCS)
        assert pid is not None and FAKE_GCS.healthy(local.port(FAKE_GCS))
        local.up(["fake-gcs"], holder=second.pid)  # joins, starts nothing
        assert local.pid(FAKE_GCS) == pid
        assert local.release(first.pid) == []
        assert FAKE_GCS.healthy(local.port(FAKE_GCS))
        assert local.release(second.pid) == ["fake-gcs"]
        assert not alive(pid) and local.pid(FAKE_GCS) is None
        assert not (run_dir / "data" / "fake-gcs").exists()
    finally:
        first.kill()
        second.kill()


def test_a_dead_holder_does_not_keep_it_running(run_dir: Path) -> None:
    dead, live = subprocess.Popen(["true"]), subprocess.Popen(["sleep", "600"])
    dead.wait()
    try:
        local = LocalCloud(run_dir)
        local.up(["fake-gcs"], holder=live.pid)
        (run_dir / "pids" / "fake-gcs.holders").write_text(f"[{dead.pid}, {live.pid}]")
        assert local.release(live.pid) == ["fake-gcs"]
    finally:
        live.kill()


def test_started_by_hand_is_not_stopped_by_a_release(run_dir: Path) -> None:
    local = LocalCloud(run_dir)
    local.up(["fake-gcs"])
    local.up(["fake-gcs"], holder=os.getpid())
    assert local.release(os.getpid()) == []
    assert local.pid(FAKE_GCS) is not None
    assert local.down() == ["fake-gcs"]


def test_up_waits_for_one_already_running_to_answer(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalCloud(run_dir)
    local.up(["fake-gcs"])
    pid = local.pid(FAKE_GCS)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # running, but answering nothing
    try:
        monkeypatch.setenv("LOCALSTACK_UP_TIMEOUT", "2")
        with pytest.raises(LocalCloudError, match="fake-gcs: not healthy within 2s"):
            LocalCloud(run_dir).up(["fake-gcs"])
    finally:
        os.kill(pid, signal.SIGCONT)
    LocalCloud(run_dir).up(["fake-gcs"])
    assert local.pid(FAKE_GCS) == pid


def test_a_taken_default_port_is_swapped_for_a_free_one(
    run_dir: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = dataclasses.replace(FAKE_GCS, default_port=taken_port)
    monkeypatch.setattr(cloud, "_names", lambda names: [moved])
    local = LocalCloud(run_dir)
    local.up()
    port = local.port(moved)
    assert port != taken_port and moved.healthy(port)
    assert ("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}") in local.exports()


def test_a_taken_configured_port_is_an_error(
    run_dir: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GCS_PORT", str(taken_port))
    with pytest.raises(LocalCloudError, match=f"port 127.0.0.1:{taken_port} \\(FAKE_GCS_PORT\\)"):
        LocalCloud(run_dir).up(["fake-gcs"])
    assert LocalCloud(run_dir).pid(FAKE_GCS) is None


@pytest.fixture
def look_alike() -> Iterator[subprocess.Popen[bytes]]:
    """A process with moto server's command line that no local cloud started (another
    project's emulator, say), leading a process group of its own."""
    # As `exec -a "python -m moto.server ..." sleep 600` in bash; Popen returns after the exec.
    argv = ["python -m moto.server -H 127.0.0.1 -p 5000", "600"]
    other = subprocess.Popen(argv, executable=shutil.which("sleep"), start_new_session=True)
    cmdline = Path(f"/proc/{other.pid}/cmdline")
    while not cmdline.read_bytes():  # shows a moment after Popen returns from the exec
        time.sleep(0.01)
    try:
        yield other
    finally:
        other.kill()
        other.wait()


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@pytest.mark.parametrize(
    "pid_file",
    [
        "{pid}\n",  # the older format: a bare pid
        '{{"pid": {pid}, "start": "1", "token": "t"}}',  # another start time: a reused pid
        '{{"pid": {pid}, "start": "{start}", "token": "t"}}',  # not given our token
    ],
    ids=["bare-pid", "other-start-time", "no-token"],
)
def test_down_never_signals_a_process_it_did_not_start(
    run_dir: Path, look_alike: subprocess.Popen[bytes], pid_file: str
) -> None:
    pid = look_alike.pid
    assert "moto.server" in Path(f"/proc/{pid}/cmdline").read_text()
    (run_dir / "pids").mkdir(parents=True)
    stale = run_dir / "pids" / "moto.pid"
    stale.write_text(pid_file.format(pid=pid, start=_start_time(pid)))
    assert LocalCloud(run_dir).pid(MOTO) is None
    result = localcloud("down", "moto")
    assert result.returncode == 0, result.stderr
    assert f"moto: stale pid file {stale}" in result.stderr
    assert "nothing to stop" in result.stderr and "stopping" not in result.stderr
    assert look_alike.poll() is None  # not signalled, nor its group
    assert not stale.exists()


def test_a_pid_file_proves_start_time_and_token(run_dir: Path) -> None:
    local = LocalCloud(run_dir)
    local.up(["fake-gcs"])
    pid = local.pid(FAKE_GCS)
    assert pid is not None
    record = json.loads((run_dir / "pids" / "fake-gcs.pid").read_text())
    assert record["pid"] == pid and record["start"] == _start_time(pid)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"SESSIONSTORE_LOCALCLOUD_TOKEN={record['token']}".encode() in environ
    assert local.down(["fake-gcs"]) == ["fake-gcs"]


def test_without_node_only_azurite_is_unavailable(run_dir: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with ps and nothing of Node.js
    bin_dir.mkdir()
    (bin_dir / "ps").symlink_to(shutil.which("ps") or "/bin/ps")
    env = {**os.environ, "PATH": str(bin_dir)}
    result = localcloud("up", "azurite", "fake-gcs", env=env)
    assert result.returncode == 1
    assert "azurite: unavailable: Node.js" in result.stderr
    assert "fake-gcs" not in result.stderr.split("error:", 1)[1]
    assert LocalCloud(run_dir).pid(FAKE_GCS) is not None
    assert LocalCloud(run_dir).pid(by_name("azurite")) is None
    exported = _evaluated(result.stdout, "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING")
    assert exported["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    assert exported["AZURE_STORAGE_CONNECTION_STRING"] == "UNSET"  # it failed: not exported


def test_status_exits_1_unless_all_are_healthy(run_dir: Path) -> None:
    LocalCloud(run_dir).up(["fake-gcs"])
    assert localcloud("status", "fake-gcs").returncode == 0
    result = localcloud("status")
    assert result.returncode == 1
    assert "fake-gcs    healthy" in result.stdout
    assert localcloud("down").returncode == 0
    assert "fake-gcs    down" in localcloud("status").stdout


# -- the pytest plugin's modes (a pytest run in a subprocess, on a private run dir) ------

GCS_TEST = """
async def test_gcs(gcs_store):
    await gcs_store.save("s", {"tick": 1})
    assert await gcs_store.has("s")
"""
AZURE_TEST = """
def test_azure(azure_store):
    pass
"""


@pytest.fixture
def project(
    pytester: pytest.Pytester, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """An empty project with nothing configured: no endpoint variables."""
    for name in list(os.environ):
        if name.startswith("SESSIONSTORE_TEST_") or name in (
            "AWS_ENDPOINT_URL",
            "STORAGE_EMULATOR_HOST",
            "AZURE_STORAGE_CONNECTION_STRING",
            "SESSIONSTORE_REQUIRE_EMULATORS",
        ):
            monkeypatch.delenv(name)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    return pytester


def test_auto_starts_what_the_tests_need_and_stops_it(
    project: pytest.Pytester, run_dir: Path
) -> None:
    project.makepyfile(GCS_TEST)
    result = project.runpytest_subprocess("--sessionstore-localcloud=auto")
    result.assert_outcomes(passed=1)
    assert (run_dir / "logs" / "fake-gcs.log").exists()
    assert not (run_dir / "logs" / "localstack.log").exists()  # not needed, not started
    assert list((run_dir / "pids").iterdir()) == []  # stopped at the end


def test_a_configured_endpoint_is_used_as_it_is(
    project: pytest.Pytester, run_dir: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    # Something that is no fake-gcs-server listens there: the tests fail, nothing starts.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{taken_port}")
    project.makepyfile(GCS_TEST)
    result = project.runpytest_subprocess("--sessionstore-localcloud=require")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*the fake_gcs emulator does not answer at *:{taken_port}*"])
    assert not run_dir.exists()


def test_off_starts_nothing(project: pytest.Pytester, run_dir: Path) -> None:
    project.makepyfile(GCS_TEST)
    project.makeini("[pytest]\nasyncio_mode = auto\nsessionstore_localcloud = off\n")
    outcomes = project.runpytest_subprocess("-rs").parseoutcomes()
    # Passed on whatever answers on the default port 9023, else skipped; never started.
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 1
    assert not run_dir.exists()


def test_a_bad_mode_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(GCS_TEST)
    project.makeini("[pytest]\nsessionstore_localcloud = sometimes\n")
    result = project.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*sessionstore_localcloud = 'sometimes': use one of*"])


@pytest.mark.parametrize(("mode", "outcome"), [("auto", "skipped"), ("require", "errors")])
def test_an_emulator_that_cannot_start(
    project: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    outcome: str,
) -> None:
    bin_dir = tmp_path / "bin"  # no Node.js: Azurite cannot start
    bin_dir.mkdir()
    (bin_dir / "ps").symlink_to(shutil.which("ps") or "/bin/ps")
    monkeypatch.setenv("PATH", str(bin_dir))
    project.makepyfile(AZURE_TEST)
    result = project.runpytest_subprocess(f"--sessionstore-localcloud={mode}", "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*azurite: unavailable: Node.js*"])


def test_an_endpoint_the_local_cloud_printed_is_started_when_it_is_down(
    project: pytest.Pytester, run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `eval "$(... up fake-gcs)"` in another run directory, then that cloud went down.
    other = tmp_path / "other-run"
    env = {**os.environ, "SESSIONSTORE_LOCALCLOUD_RUN": str(other)}
    printed = localcloud("up", "fake-gcs", env=env)
    assert printed.returncode == 0, printed.stderr
    assert localcloud("down", env=env).returncode == 0
    names = ("STORAGE_EMULATOR_HOST", "SESSIONSTORE_LOCALCLOUD_EXPORTED")
    for name, value in _evaluated(printed.stdout, *names).items():
        monkeypatch.setenv(name, value)
    project.makepyfile(GCS_TEST)
    result = project.runpytest_subprocess("--sessionstore-localcloud=require")
    result.assert_outcomes(passed=1)
    assert (run_dir / "logs" / "fake-gcs.log").exists()  # started by the plugin


FAKE_PYTHON = """#!/bin/bash
# Stands in for the interpreter that creates the emulators' virtualenv; its "pip"
# says that it runs (its pid, into the FIFO) and then works for a long time.
if [ "$1" = -c ]; then echo 3.11; exit 0; fi
mkdir -p "$3/bin"
printf '#!/bin/bash\\necho $$ > "$FAKE_PIP_FIFO"\\nexec sleep 600\\n' > "$3/bin/python"
chmod +x "$3/bin/python"
"""


def test_an_interrupted_install_keeps_its_lock_until_its_pip_ends(
    run_dir: Path, tmp_path: Path
) -> None:
    fake_python, fifo, cache = tmp_path / "python", tmp_path / "fifo", tmp_path / "cache"
    fake_python.write_text(FAKE_PYTHON)
    fake_python.chmod(0o755)
    os.mkfifo(fifo)
    env = {**os.environ, "LOCALSTACK_PYTHON": str(fake_python), "FAKE_PIP_FIFO": str(fifo),
           "SESSIONSTORE_LOCALCLOUD_CACHE": str(cache)}  # fmt: skip
    up = subprocess.Popen(
        [sys.executable, "-m", "sessionstore.localcloud", "up", "moto"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pip = int(fifo.read_text())  # blocks until the install's pip runs
    try:
        up.send_signal(signal.SIGTERM)  # only `up`, as a user's kill would
        up.wait(timeout=60)
        (lock_path,) = cache.glob("python3.11-*.lock")
        with open(lock_path) as lock:
            with pytest.raises(BlockingIOError):  # the orphaned pip still holds it
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.kill(pip, signal.SIGKILL)
            fcntl.flock(lock, fcntl.LOCK_EX)  # free once it is gone: the next up goes on
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pip, signal.SIGKILL)


def test_a_damaged_cached_install_is_named_and_no_ready_line(run_dir: Path, tmp_path: Path) -> None:
    # A copy of the warmed virtualenv (hard links: deleting in it leaves the original).
    (venv,) = [path for path in CACHE.glob("python3.11-*") if path.is_dir()]
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(["cp", "-al", str(venv), str(cache / venv.name)], check=True, timeout=600)
    (server,) = (cache / venv.name).glob("lib/python3*/site-packages/moto/server.py")
    server.unlink()
    result = localcloud(
        "up", "moto", env={**os.environ, "SESSIONSTORE_LOCALCLOUD_CACHE": str(cache)}
    )
    assert result.returncode == 1
    assert "moto: exited before it was healthy" in result.stderr
    assert f"delete {cache / venv.name} (after `down`" in result.stderr
    assert "ready" not in result.stderr
    assert result.stdout == ""


def _unwritable(tmp_path: Path) -> Path:
    """A directory that cannot be created: a file stands in its way. (A read-only
    directory fails the same way; a chmod does not stop root, who runs CI here.)"""
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "localcloud"


@pytest.mark.parametrize("command", ["up", "down"])
def test_an_unwritable_run_dir_is_one_line_naming_it_and_its_variable(
    run_dir: Path, tmp_path: Path, command: str
) -> None:
    bad = _unwritable(tmp_path)
    env = {**os.environ, "SESSIONSTORE_LOCALCLOUD_RUN": str(bad)}
    result = localcloud(command, "fake-gcs", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"localcloud: error: cannot write to {bad} (Not a directory): "
        "set SESSIONSTORE_LOCALCLOUD_RUN to a writable directory"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_an_unwritable_cache_names_it_and_its_variable(run_dir: Path, tmp_path: Path) -> None:
    bad = _unwritable(tmp_path)
    result = localcloud(
        "up", "fake-gcs", env={**os.environ, "SESSIONSTORE_LOCALCLOUD_CACHE": str(bad)}
    )
    assert result.returncode == 1
    assert f"cannot write to the install cache {bad} (Not a directory): " in result.stderr
    assert "set SESSIONSTORE_LOCALCLOUD_CACHE to a writable directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_auto_skips_with_the_message_when_the_run_dir_is_unwritable(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _unwritable(tmp_path)
    monkeypatch.setenv("SESSIONSTORE_LOCALCLOUD_RUN", str(bad))
    project.makepyfile(GCS_TEST)
    result = project.runpytest_subprocess("--sessionstore-localcloud=auto", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*cannot write to {bad}*SESSIONSTORE_LOCALCLOUD_RUN*"])


HOLDING_TEST = """
import os, time

def test_hold(fake_gcs):
    with open(os.environ["READY_FIFO"], "w") as ready:  # fake-gcs-server is up
        ready.write("up")
    time.sleep(600)  # until the SIGTERM
"""


def test_a_sigterm_of_pytest_stops_what_it_started(
    project: pytest.Pytester, run_dir: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    project.makepyfile(HOLDING_TEST)
    pytest_run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--sessionstore-localcloud=auto",
        ],
        cwd=project.path,
        env={**os.environ, "READY_FIFO": str(fifo)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert fifo.read_text() == "up"  # blocks until the test runs
        pid = LocalCloud(run_dir).pid(FAKE_GCS)
        assert pid is not None
        pytest_run.send_signal(signal.SIGTERM)  # as `timeout` or a cancelled CI job does
        pytest_run.wait(timeout=120)
        assert not alive(pid)
        assert list((run_dir / "pids").iterdir()) == []
    finally:
        pytest_run.kill()

"""sessionstore.localcloud on real emulators, in private run directories.

fake-gcs-server is the emulator these tests start (it starts in about a second); the
installs come from the per-user cache that ``scripts/test`` warmed. The whole cloud,
started by the pytest plugin from the built wheel, is tested in test_user_project.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionstore.localcloud import LocalCloud, LocalCloudError, by_name, cloud
from sessionstore.localcloud.processes import alive

FAKE_GCS = by_name("fake-gcs")


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private run directory; whatever was started in it is stopped afterwards."""
    run = tmp_path / "run"
    monkeypatch.setenv("SESSIONSTORE_LOCALCLOUD_RUN", str(run))
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


def test_env_prints_the_lines_eval_expects(run_dir: Path) -> None:
    result = localcloud("env")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "export AWS_ENDPOINT_URL='http://127.0.0.1:4566'",
        "export AWS_ACCESS_KEY_ID='test'",
        "export AWS_SECRET_ACCESS_KEY='test'",
        "export AWS_DEFAULT_REGION='us-east-1'",
        "export STORAGE_EMULATOR_HOST='http://127.0.0.1:9023'",
        "export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=http;"
        "AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u"
        "SRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;'",
        "export SESSIONSTORE_TEST_BUCKET='sessionstore-test'",
        "export SESSIONSTORE_TEST_MOTO_ENDPOINT='http://127.0.0.1:5000'",
    ]


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


def test_down_never_signals_a_process_it_did_not_start(run_dir: Path) -> None:
    # A pid file whose pid now belongs to another program (a reused pid) is ignored.
    other = subprocess.Popen(["sleep", "600"])
    try:
        (run_dir / "pids").mkdir(parents=True)
        (run_dir / "pids" / "fake-gcs.pid").write_text(f"{other.pid}\n")
        assert LocalCloud(run_dir).down() == []
        assert other.poll() is None
    finally:
        other.kill()


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
    assert "STORAGE_EMULATOR_HOST=" in result.stdout.replace("export ", "").replace("'", "")


def test_status_exits_1_unless_all_are_healthy(run_dir: Path) -> None:
    LocalCloud(run_dir).up(["fake-gcs"])
    assert localcloud("status", "fake-gcs").returncode == 0
    result = localcloud("status")
    assert result.returncode == 1
    assert "fake-gcs    healthy" in result.stdout
    assert localcloud("down").returncode == 0
    assert "fake-gcs    down" in localcloud("status").stdout

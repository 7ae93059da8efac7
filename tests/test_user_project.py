"""A user's project, tested as a user has it: examples/user-project/ in an empty
directory, with sessionstore installed from its wheel into a fresh virtualenv outside
the repository, run with ``pytest --sessionstore-localcloud=require``.

The plugin there starts LocalStack, moto, fake-gcs-server and Azurite itself (two
pytest-xdist workers share them) from the per-user install cache that ``scripts/test``
warmed, in a private run directory; the repository's own local cloud holds the default
ports, so this also proves the free-port fallback. Afterwards no emulator it started
may be left running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from sessionstore.localcloud import EMULATORS, LocalCloud
from sessionstore.localcloud.processes import port_busy

REPO = Path(__file__).resolve().parent.parent
#: Variables that would point the example at emulators instead of letting it start its own.
CONFIGURING = (
    "AWS_ENDPOINT_URL",
    "STORAGE_EMULATOR_HOST",
    "AZURE_STORAGE_CONNECTION_STRING",
    "SESSIONSTORE_REQUIRE_EMULATORS",
    "SESSIONSTORE_LOCALCLOUD_RUN",
    "PYTHONPATH",
)


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=900, check=False, **kwargs
    )  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result  # type: ignore[no-any-return]


def _emulator_pids() -> set[int]:
    """Every running process that has an emulator's command line."""
    out = _run(["ps", "-eww", "-o", "pid=,args="]).stdout
    markers = [e.marker for e in EMULATORS]
    return {
        int(line.split(None, 1)[0])
        for line in out.splitlines()
        if any(marker in line for marker in markers)
    }


def _started_for(run_dir: Path, pids: set[int]) -> set[int]:
    """Those of ``pids`` started for ``run_dir``: they inherited it in their environment
    (so emulators that others start meanwhile, e.g. a shared cloud, do not count)."""
    mine = set()
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except FileNotFoundError:  # gone since
            continue
        if f"SESSIONSTORE_LOCALCLOUD_RUN={run_dir}".encode() in environ.split(b"\0"):
            mine.add(pid)
    return mine


def test_the_example_project_passes_from_the_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)])
    (wheel,) = dist.glob("sessionstore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sessionstore/localcloud/cloud.py" in names
    assert "sessionstore/localcloud/pins/package-lock.json" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, f"sessionstore[s3,gcs,azure] @ {wheel.as_uri()}", "pytest", "pytest-asyncio",
          "pytest-xdist"])  # fmt: skip

    project = tmp_path / "project"
    shutil.copytree(REPO / "examples" / "user-project", project)
    run_dir = tmp_path / "localcloud-run"
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURING}
    env = {k: v for k, v in env.items() if not k.startswith("SESSIONSTORE_TEST_")}
    env["SESSIONSTORE_LOCALCLOUD_RUN"] = str(run_dir)
    defaults_taken = {e.name for e in EMULATORS if port_busy("127.0.0.1", e.default_port)}
    before = _emulator_pids()

    result = _run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
         "--sessionstore-localcloud=require"],
        cwd=project,
        env=env,
    )  # fmt: skip
    assert re.search(r"\b8 passed\b", result.stdout), result.stdout[-2000:]
    assert "skipped" not in result.stdout

    assert _started_for(run_dir, _emulator_pids() - before) == set(), "emulators left running"
    assert list((run_dir / "pids").iterdir()) == []
    for emulator in EMULATORS:
        header = (run_dir / "logs" / f"{emulator.name}.log").read_text().splitlines()[0]
        if emulator.name in defaults_taken:  # it was started elsewhere, on a free port
            assert f"on port {emulator.default_port}," not in header
    assert LocalCloud(run_dir).status()[0].pid is None

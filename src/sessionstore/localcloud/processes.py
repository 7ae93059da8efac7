"""Emulator processes: started detached in their own process group, found again by
their pid files (never by name), stopped by signalling that group.

What proves that a pid is still the process that was started (see
:meth:`sessionstore.localcloud.LocalCloud.pid`): its start time (``/proc/PID/stat``
field 22, ``ps -o lstart`` without procfs), recorded with the pid, and an identity
token given to it in its environment (``/proc/PID/environ``). A reused pid has another
start time; a name proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "alive",
    "command_line",
    "environment_has",
    "free_port",
    "port_busy",
    "start_detached",
    "start_time",
    "stop_group",
]

_PROC = Path("/proc")

#: Popen objects of the emulators this process started, kept so that Python neither
#: warns about them nor leaves them as zombies once they stop.
_STARTED: list[subprocess.Popen[bytes]] = []


def _ps(pid: int, field: str) -> str:
    # -ww: the whole command line, whatever COLUMNS says (ps cuts it to the width).
    out = subprocess.run(
        ["ps", "-ww", "-o", f"{field}=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


def _reap() -> None:
    for proc in list(_STARTED):
        if proc.poll() is not None:
            _STARTED.remove(proc)


def alive(pid: int) -> bool:
    """Is process ``pid`` alive (and not a zombie)?"""
    _reap()
    stat = _ps(pid, "stat")
    return bool(stat) and not stat.startswith("Z")


def command_line(pid: int) -> str:
    """The command line of process ``pid`` ("" when there is none)."""
    return _ps(pid, "args")


def _has_procfs() -> bool:
    return (_PROC / "self" / "stat").exists()


def start_time(pid: int) -> str | None:
    """When process ``pid`` started, as the kernel records it (``/proc/PID/stat`` field
    22; ``ps -o lstart`` where there is no procfs); None when it is gone or a zombie."""
    if not _has_procfs():
        return (_ps(pid, "lstart") or None) if alive(pid) else None
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
    return None if fields[0] in ("Z", "X", "x") else fields[19]


def environment_has(pid: int, name: str, value: str) -> bool:
    """Was process ``pid`` started with ``name=value`` in its environment? False when
    it is gone or its environment cannot be read (another user's); True where there is
    no procfs to tell."""
    if not _has_procfs():
        return True
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{name}={value}".encode() in environ.split(b"\0")


def _group_alive(pgid: int) -> bool:
    _reap()
    out = subprocess.run(
        ["ps", "-e", "-o", "pgid=", "-o", "stat="], capture_output=True, text=True, check=False
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == str(pgid) and not fields[1].startswith("Z"):
            return True
    return False


def port_busy(host: str, port: int) -> bool:
    """Does something accept TCP connections on ``host:port``?"""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str) -> int:
    """A port on ``host`` that nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_detached(argv: Sequence[str], log: Path, env: Mapping[str, str], header: str) -> int:
    """Start ``argv`` in a new session (its own process group, no terminal), output
    appended to ``log`` after ``header``; returns its pid (= its process group id)."""
    with open(log, "w") as out:
        out.write(header)
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    _STARTED.append(proc)
    return proc.pid


def _signal(pid: int, sig: signal.Signals) -> None:
    # Emulators lead their own process group (started in a new session): signal all of it.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_group(pid: int, timeout: float) -> bool:
    """SIGTERM to the process group led by ``pid``, SIGKILL after ``timeout`` seconds;
    True once no live process is left in it."""

    def gone() -> bool:
        return not alive(pid) and not _group_alive(pid)

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        _signal(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if gone():
                return True
            time.sleep(0.2)
    return gone()

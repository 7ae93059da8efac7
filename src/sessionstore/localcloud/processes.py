"""Emulator processes: started detached in their own process group, found again by
their pid files (never by name), stopped by signalling that group.

A pid file counts only while its process is alive (a zombie is not) and its command
line still contains the emulator's marker, which guards against a reused pid.
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

__all__ = ["alive", "command_line", "free_port", "port_busy", "start_detached", "stop_group"]

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

"""One local cloud: the emulators started from one run directory, and their state.

The run directory (``$SESSIONSTORE_LOCALCLOUD_RUN``, default ``<cache>/run``) holds,
per emulator, ``pids/NAME.pid`` (JSON: its pid, which leads its process group, the
process's start time and the identity token put in its environment: together they
prove that the pid is still the process started here),
``pids/NAME.port`` (the port it was started on) and, when it was started for holders
(pytest sessions, ``scripts/test``), ``pids/NAME.holders``: the pids of the processes
that use it. A holder's release stops the emulators that no live holder is left on
("first starts, last stops"); an emulator started without a holder (``up`` by hand)
runs until ``down``. ``logs/NAME.log`` is its output, ``data/NAME`` its storage (deleted
when it stops). A file lock serialises ``up``, ``down`` and releases.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sessionstore.localcloud import processes
from sessionstore.localcloud.emulators import EMULATORS, HOST, Emulator, by_name
from sessionstore.localcloud.installs import CACHE_ENV, InstallError, Say, cache_home

__all__ = [
    "EXPORTED_ENV",
    "RUN_ENV",
    "EmulatorState",
    "LocalCloud",
    "LocalCloudError",
    "UnwritableDirectoryError",
    "default_run_dir",
    "export_lines",
    "printed_by_localcloud",
]

#: The run directory of the local cloud (default ``<cache>/run``).
RUN_ENV = "SESSIONSTORE_LOCALCLOUD_RUN"
BUCKET_ENV = "SESSIONSTORE_TEST_BUCKET"
DEFAULT_BUCKET = "sessionstore-test"
#: Set by the export lines: ``NAME=DIGEST`` of each variable they set, so that the pytest
#: plugin tells a value this tool printed from one the user configured.
EXPORTED_ENV = "SESSIONSTORE_LOCALCLOUD_EXPORTED"
#: The variable that carries an emulator's identity token (see :meth:`LocalCloud.pid`).
TOKEN_ENV = "SESSIONSTORE_LOCALCLOUD_TOKEN"


class LocalCloudError(RuntimeError):
    """Some emulators could not be started or stopped.

    ``failures`` maps each such emulator's name to the reason (with its log's tail).
    """

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        super().__init__("\n".join(f"{name}: {reason}" for name, reason in failures.items()))


class UnwritableDirectoryError(LocalCloudError):
    """The run directory cannot be created or written: one line naming it and the
    variable that moves it (every emulator asked for fails with it)."""

    def __init__(self, directory: Path, error: OSError, names: Iterable[str]) -> None:
        where = f"set {RUN_ENV} to a writable directory"
        if not os.environ.get(RUN_ENV):
            where += f" (or {CACHE_ENV}, whose run/ it is by default)"
        self.message = f"cannot write to {directory} ({error.strerror or error}): {where}"
        super().__init__(dict.fromkeys(names, self.message))

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class EmulatorState:
    """What ``status`` reports for one emulator."""

    emulator: Emulator
    pid: int | None
    port: int
    healthy: bool
    log: Path

    @property
    def state(self) -> str:
        """healthy / running, not healthy / down / down (port taken)."""
        if self.pid is not None:
            return "healthy" if self.healthy else "running, not healthy"
        return "down (port taken)" if processes.port_busy(HOST, self.port) else "down"


def default_run_dir() -> Path:
    """``$SESSIONSTORE_LOCALCLOUD_RUN``, else ``<cache>/run``."""
    explicit = os.environ.get(RUN_ENV)
    return Path(explicit).expanduser() if explicit else cache_home() / "run"


def _names(names: Iterable[str] | None) -> list[Emulator]:
    return [by_name(n) for n in names] if names else list(EMULATORS)


def _quiet(message: str) -> None:
    del message


@dataclass(frozen=True)
class _Started:
    """What a pid file records: the pid, its start time and its identity token."""

    pid: int
    start: str
    token: str

    @classmethod
    def parse(cls, text: str) -> _Started | None:
        try:
            record = json.loads(text)
            return cls(int(record["pid"]), str(record["start"]), str(record["token"]))
        except (ValueError, TypeError, KeyError):
            return None  # unreadable, or an older format without start time and token

    def dump(self) -> str:
        return json.dumps({"pid": self.pid, "start": self.start, "token": self.token}) + "\n"

    def running(self) -> bool:
        """Is the pid still the process that was started (same start time, same token)?"""
        return processes.start_time(self.pid) == self.start and processes.environment_has(
            self.pid, TOKEN_ENV, self.token
        )


class LocalCloud:
    """The emulators of one run directory (see the module docstring).

    ``say`` receives progress messages; ``up_timeout`` is how long :meth:`up` waits
    for health (``LOCALSTACK_UP_TIMEOUT``, 120 s); ``down_timeout`` how long a stop
    waits after SIGTERM before SIGKILL (``LOCALSTACK_DOWN_TIMEOUT``, 20 s).
    """

    def __init__(self, run_dir: Path | None = None, *, say: Say | None = None) -> None:
        self.run_dir = run_dir or default_run_dir()
        self.say: Say = say or _quiet
        self.bucket = os.environ.get(BUCKET_ENV) or DEFAULT_BUCKET
        self.up_timeout = float(os.environ.get("LOCALSTACK_UP_TIMEOUT") or 120)
        self.down_timeout = float(os.environ.get("LOCALSTACK_DOWN_TIMEOUT") or 20)

    # -- state files -------------------------------------------------------------------

    def _file(self, emulator: Emulator, suffix: str) -> Path:
        return self.run_dir / "pids" / f"{emulator.name}.{suffix}"

    def log(self, emulator: Emulator) -> Path:
        """The emulator's output, rewritten at each start."""
        return self.run_dir / "logs" / f"{emulator.name}.log"

    def _started(self, emulator: Emulator) -> tuple[bool, _Started | None]:
        """Is there a pid file, and its record if it proves a running process."""
        try:
            text = self._file(emulator, "pid").read_text()
        except FileNotFoundError:
            return False, None
        except OSError:
            return True, None
        record = _Started.parse(text)
        return True, record if record is not None and record.running() else None

    def pid(self, emulator: Emulator) -> int | None:
        """The pid of the emulator if this run directory started it and it still runs:
        the pid file's process has the start time recorded with the pid and the identity
        token this cloud put in its environment (a reused pid has neither)."""
        record = self._started(emulator)[1]
        return None if record is None else record.pid

    def port(self, emulator: Emulator) -> int:
        """The port it runs on (as started), else the port it would be started on."""
        if self.pid(emulator) is not None:
            with contextlib.suppress(OSError, ValueError):
                return int(self._file(emulator, "port").read_text().strip())
        return emulator.port()

    def _holders(self, emulator: Emulator) -> list[int] | None:
        try:
            held = json.loads(self._file(emulator, "holders").read_text())
        except (OSError, ValueError):
            return None
        return [pid for pid in held if processes.alive(pid)]

    def _set_holders(self, emulator: Emulator, holders: list[int]) -> None:
        self._file(emulator, "holders").write_text(json.dumps(sorted(set(holders))))

    def _forget(self, emulator: Emulator) -> None:
        for suffix in ("pid", "port", "holders"):
            self._file(emulator, suffix).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self, names: Iterable[str] = ()) -> Iterator[None]:
        try:
            for sub in ("pids", "logs", "data"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            lock = open(self.run_dir / "lock", "w")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise UnwritableDirectoryError(self.run_dir, exc, names) from None
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.say("waiting for another start or stop of the local cloud to finish ...")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- up --------------------------------------------------------------------------

    def up(self, names: Iterable[str] | None = None, *, holder: int | None = None) -> None:
        """Start the named emulators (default: all four) unless they already run,
        wait until each is healthy and make sure the test bucket exists on it.

        With ``holder`` (a pid), the emulators started here, and those already held,
        are held by it until :meth:`release`. Emulators that fail do not stop the
        others; raises :class:`LocalCloudError` naming each failure afterwards.
        """
        emulators = _names(names)
        failures: dict[str, str] = {}
        with self._locked(e.name for e in emulators):
            started_at = time.monotonic()
            wanted = [e for e in emulators if not self._already_up(e, holder)]
            installs = self._install(wanted, failures)
            started = [e for e in wanted if e.name in installs]
            for emulator in started:
                try:
                    self._start(emulator, installs[emulator.name], holder)
                except (OSError, RuntimeError) as exc:
                    failures[emulator.name] = str(exc)
            deadline = time.monotonic() + self.up_timeout
            for emulator in emulators:  # those already running too: one may be starting
                if emulator.name not in failures:
                    self._wait_ready(emulator, deadline, failures)
                    if emulator.name in failures and emulator.name in installs:
                        failures[emulator.name] += _damaged_hint(installs[emulator.name])
        if started and not failures:
            self.say(f"local cloud ready in {time.monotonic() - started_at:.1f}s")
        if failures:
            raise LocalCloudError(failures)

    def _already_up(self, emulator: Emulator, holder: int | None) -> bool:
        pid = self.pid(emulator)
        if pid is None:
            self._forget(emulator)
            return False
        held = self._holders(emulator)
        if held is not None and holder is None:  # `up` by hand: it now runs until `down`
            self._file(emulator, "holders").unlink()
        elif held is not None and holder is not None:
            self._set_holders(emulator, [*held, holder])
        self.say(f"{emulator.name} already running (pid {pid}, port {self.port(emulator)})")
        return True

    def _install(self, emulators: list[Emulator], failures: dict[str, str]) -> dict[str, Path]:
        """Install what the emulators run from, the virtualenv and Azurite at once."""
        runtimes = {e.runtime: e for e in emulators}
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {r: pool.submit(e.install, self.say) for r, e in runtimes.items()}
        done: dict[str, Path] = {}
        for emulator in emulators:
            future = futures[emulator.runtime]
            error = future.exception()
            if error is None:
                done[emulator.name] = future.result()
            elif isinstance(error, InstallError) and emulator.runtime == "node":
                failures[emulator.name] = f"unavailable: {error}"
            else:
                failures[emulator.name] = f"install failed: {error}"
        if "azurite" in done and shutil.which("node") is None:
            del done["azurite"]
            failures["azurite"] = "unavailable: Node.js not found: Azurite needs Node.js 20+"
        return done

    def _start(self, emulator: Emulator, install: Path, holder: int | None) -> None:
        port = emulator.port()
        if processes.port_busy(HOST, port):
            if emulator.port_configured():
                raise RuntimeError(
                    f"port {HOST}:{port} ({emulator.port_env}) is in use by a process that "
                    "this local cloud did not start; stop it or choose another port"
                )
            port = processes.free_port(HOST)
            self.say(f"{emulator.name}: port {emulator.port()} is taken, using {port}")
        data = self.run_dir / "data" / emulator.name
        data.mkdir(parents=True, exist_ok=True)
        argv, extra = emulator.command(install, port, data)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        token = secrets.token_hex(16)
        header = f"=== {emulator.name} on port {port}, started at {time.ctime()}\n"
        pid = processes.start_detached(
            argv, self.log(emulator), {**env, **extra, TOKEN_ENV: token}, header
        )
        record = _Started(pid, processes.start_time(pid) or "gone", token)
        # Popen returns at the exec's point of no return; the new environment shows in
        # /proc a moment later. Wait for it, so that the record proves the process at once.
        deadline = time.monotonic() + 5
        while not record.running() and processes.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._file(emulator, "pid").write_text(record.dump())
        self._file(emulator, "port").write_text(f"{port}\n")
        if holder is not None:
            self._set_holders(emulator, [holder])
        self.say(f"started {emulator.name} (pid {pid}, port {port}, log: {self.log(emulator)})")

    def _wait_ready(self, emulator: Emulator, deadline: float, failures: dict[str, str]) -> None:
        port = self.port(emulator)
        while not emulator.healthy(port):
            if self.pid(emulator) is None:
                failures[emulator.name] = self._with_log(emulator, "exited before it was healthy")
                return
            if time.monotonic() > deadline:
                failures[emulator.name] = self._with_log(
                    emulator, f"not healthy within {self.up_timeout:.0f}s on port {port}"
                )
                return
            time.sleep(0.1)
        try:
            emulator.create_bucket(port, self.bucket)
        except (OSError, RuntimeError) as exc:
            failures[emulator.name] = f"creating bucket {self.bucket} failed: {exc}"

    def _with_log(self, emulator: Emulator, reason: str) -> str:
        log = self.log(emulator)
        try:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        except OSError:
            tail = ""
        return f"{reason} (log: {log}); last lines:\n{tail}"

    # -- down --------------------------------------------------------------------------

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop the named emulators (default: all) that this run directory started, and
        delete their data. Returns the names stopped; raises :class:`LocalCloudError`
        for one that is still running after SIGKILL."""
        emulators = _names(names)
        with self._locked(e.name for e in emulators):
            return self._stop(emulators)

    def release(self, holder: int) -> list[str]:
        """Drop ``holder`` (and dead holders) from every emulator; stop those that no
        live holder is left on. Returns the names stopped."""
        with self._locked():
            idle = []
            for emulator in EMULATORS:
                held = self._holders(emulator)
                if held is None or self.pid(emulator) is None:
                    continue
                left = [pid for pid in held if pid != holder]
                self._set_holders(emulator, left)
                if not left:
                    idle.append(emulator)
            return self._stop(idle)

    def _stop(self, emulators: list[Emulator]) -> list[str]:
        stopped, failures = [], {}
        for emulator in emulators:
            exists, record = self._started(emulator)
            pid = None if record is None else record.pid
            if exists and pid is None:
                self.say(
                    f"{emulator.name}: stale pid file {self._file(emulator, 'pid')} (its process "
                    "is not one this cloud started, or is gone): removed, nothing signalled"
                )
            if pid is not None:
                self.say(f"stopping {emulator.name} (pid {pid}) ...")
                if not processes.stop_group(pid, self.down_timeout):
                    failures[emulator.name] = f"pid {pid} is still running; data kept"
                    continue
                stopped.append(emulator.name)
                self.say(f"stopped {emulator.name}")
            self._forget(emulator)
            shutil.rmtree(self.run_dir / "data" / emulator.name, ignore_errors=True)
        if failures:
            raise LocalCloudError(failures)
        return stopped

    # -- status and environment ----------------------------------------------------------

    def status(self, names: Iterable[str] | None = None) -> list[EmulatorState]:
        """The state of each named emulator (default: all)."""
        states = []
        for emulator in _names(names):
            pid, port = self.pid(emulator), self.port(emulator)
            healthy = pid is not None and emulator.healthy(port)
            states.append(EmulatorState(emulator, pid, port, healthy, self.log(emulator)))
        return states

    def exports(
        self, names: Iterable[str] | None = None, *, running_or_not: bool = False
    ) -> list[tuple[str, str]]:
        """The variables that point the SDKs and the pytest plugin at the named emulators
        (default: all) that this cloud runs and that answer their health check; nothing
        for one that is down or a foreign server on its port. The last pair,
        :data:`EXPORTED_ENV`, marks them as printed by the local cloud (see
        :func:`printed_by_localcloud`).

        ``running_or_not``: every named emulator at its configured port, without the
        mark (for emulators run some other way, e.g. with Docker).
        """
        wanted = _names(names)
        if not running_or_not:
            wanted = [e for e in wanted if self.pid(e) is not None and e.healthy(self.port(e))]
        if not wanted:
            return []
        moto = [e for e in wanted if e.name == "moto"]
        pairs = [pair for e in wanted if e.name != "moto" for pair in e.exports(self.port(e))]
        pairs.append((BUCKET_ENV, self.bucket))
        pairs += [pair for e in moto for pair in e.exports(self.port(e))]
        if running_or_not:
            return pairs
        return [*pairs, (EXPORTED_ENV, " ".join(f"{n}={_digest(v)}" for n, v in pairs))]


def _damaged_hint(install: Path) -> str:
    """What to delete when a start from a cached install failed (it may be damaged)."""
    directory = install.parent if install.name == "node_modules" else install
    return (
        f"\nIf a file is missing from its cached install, delete {directory} (after `down`"
        " of every local cloud that runs from it) and run `up` again to reinstall it."
    )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def printed_by_localcloud(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Does variable ``name`` hold the value that a local cloud's ``up`` or ``env``
    printed (as :data:`EXPORTED_ENV` records), rather than one the user configured?"""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        return False
    return f"{name}={_digest(value)}" in env.get(EXPORTED_ENV, "").split()


def export_lines(pairs: list[tuple[str, str]]) -> str:
    """``export NAME=VALUE`` lines for a shell's eval, each value quoted with
    :func:`shlex.quote` (safe whatever it holds)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in pairs)


def stderr_say(message: str) -> None:
    """Print a progress message to stderr (stdout carries only export lines)."""
    print(message, file=sys.stderr, flush=True)

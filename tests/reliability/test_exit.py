"""A process ends promptly and quietly after a request to a server that never answers.

The server (a socket on loopback, in this test) accepts connections and reads the
requests, but never answers: the store's SDK would wait out its read timeout (30 s for
S3 and GCS, 60 s for Azure; left at their defaults here). A program whose request a
deadline cut off, or that Ctrl-C interrupted, must still exit at once, with nothing
printed at exit. Each case runs in a child process, bounded by a generous timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

CLOUDS = ["s3", "gcs", "azure"]
#: Far below the SDKs' read timeouts, far above a prompt exit on a loaded machine.
EXIT_BOUND = 20
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class NeverAnswers:
    """A loopback TCP server that accepts, reads every request, and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.requested = threading.Event()  # some bytes of a request arrived
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed: the test is over
                return
            self._open.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                self.requested.set()
        except OSError:
            pass

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in _serve; close() alone would not (Linux)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._open:
            conn.close()
        self._thread.join(10)


@pytest.fixture
def server() -> Iterator[NeverAnswers]:
    listening = NeverAnswers()
    yield listening
    listening.close()


def url_and_env(cloud: str, port: int) -> tuple[str, dict[str, str]]:
    """A store URL of ``cloud`` whose endpoint is the silent server."""
    endpoint = f"http://127.0.0.1:{port}"
    if cloud == "s3":
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        return f"s3://bucket/p/?endpoint_url={endpoint}&region=us-east-1", env
    if cloud == "gcs":
        return "gs://bucket/p/?project=test", {"STORAGE_EMULATOR_HOST": endpoint}
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/devstoreaccount1;"
    )
    return "az://container/p/", {"AZURE_STORAGE_CONNECTION_STRING": connection}


def start(code: str, url: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-W", "always", "-c", code, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # faulthandler: a child that does not exit prints its threads' stacks (finish)
        env={**os.environ, **env, "PYTHONFAULTHANDLER": "1"},
    )


def finish(child: subprocess.Popen[str]) -> tuple[str, str]:
    """(stdout, stderr) of the child, which must exit within EXIT_BOUND seconds."""
    try:
        out, err = child.communicate(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)  # faulthandler prints where every thread waits
        try:
            _, stacks = child.communicate(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            child.kill()
            _, stacks = child.communicate()
        pytest.fail(f"the process did not exit within {EXIT_BOUND} s of its end:\n{stacks}")
    assert child.returncode == 0, err
    return out, err


SYNC_CUT_OFF = """
import sys
import sessionstore
from sessionstore import StoreUnavailableError, open_store_sync

store = open_store_sync(sys.argv[1])  # module level, never closed
store.__enter__()  # opened first: the deadline cuts the request, however slow the start
try:
    with sessionstore.deadline(2):
        store.load("s")
except StoreUnavailableError as exc:
    print("cut off:", "deadline" in str(exc))
"""

ASYNC_CUT_OFF = """
import asyncio, sys
import sessionstore
from sessionstore import StoreUnavailableError, open_store

store = open_store(sys.argv[1])

async def handler():
    await store.__aenter__()  # opened, never closed; the deadline cuts the request
    try:
        with sessionstore.deadline(2):
            await store.load("s")
    except StoreUnavailableError as exc:
        print("cut off:", "deadline" in str(exc))

asyncio.run(handler())
"""


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("code", [SYNC_CUT_OFF, ASYNC_CUT_OFF], ids=["sync", "async"])
def test_a_request_cut_off_by_the_deadline_does_not_hold_the_exit(
    server: NeverAnswers, cloud: str, code: str
) -> None:
    url, env = url_and_env(cloud, server.port)
    out, err = finish(start(code, url, env))
    assert (out, err) == ("cut off: True\n", "")
    assert server.requested.is_set()


INTERRUPTED = """
import signal, sys
from sessionstore import open_store_sync

# Ctrl-C raises KeyboardInterrupt, as in a terminal, also when the test run was started
# in the background (whose children inherit SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)

store = open_store_sync(sys.argv[1])
store.__enter__()  # opened: the next call's request goes out at once
print("calling", flush=True)
try:
    store.load("s")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("cloud", CLOUDS)
def test_ctrl_c_during_a_sync_call_reaches_the_caller_and_prints_nothing(
    server: NeverAnswers, cloud: str
) -> None:
    url, env = url_and_env(cloud, server.port)
    child = start(INTERRUPTED, url, env)
    try:
        assert child.stdout is not None and child.stdout.readline() == "calling\n"
        assert server.requested.wait(EXIT_BOUND), "the request never reached the server"
        child.send_signal(signal.SIGINT)  # Ctrl-C while the call waits for the answer
    except BaseException:
        child.kill()
        child.communicate()
        raise
    out, err = finish(child)
    assert (out, err) == ("interrupted\n", "")

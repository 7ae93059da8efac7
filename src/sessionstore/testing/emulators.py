"""Where each emulator answers: its :class:`Emulator` (endpoint, bucket, SDK options)
from the environment or a port, and the probe that tells whether it is up.

Each emulator has one name, used for its pytest fixture, its ``<name>_emulator()``
function here and in messages: ``localstack_s3`` (LocalStack's S3), ``moto_s3`` (moto
server's S3), ``fake_gcs`` (fake-gcs-server) and ``azurite`` (Azurite's blob service).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sessionstore.localcloud import printed_by_localcloud
from sessionstore.localcloud.emulators import HOST, azure_connection_string

__all__ = [
    "AZURITE_CONNECTION_STRING",
    "DEFAULT_BUCKET",
    "SOURCES",
    "Emulator",
    "Source",
    "answers",
    "azurite_emulator",
    "fake_gcs_emulator",
    "localstack_s3_emulator",
    "moto_s3_emulator",
]

#: The published development account of Azurite (not a secret).
AZURITE_CONNECTION_STRING = azure_connection_string(10000)
DEFAULT_BUCKET = "sessionstore-test"


@dataclass(frozen=True)
class Emulator:
    """Where one emulator answers and what the tests may use there."""

    name: str
    endpoint: str
    bucket: str
    options: dict[str, Any]


def _configured(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


#: Seconds an emulator may take to answer the probe. A stopped one refuses at once; a
#: busy one (Azurite on a loaded 2-core CI machine took ~3 s) must not fail the run.
_PROBE_TIMEOUT = 15.0


def answers(url: str) -> bool:
    """Whether anything answers ``url`` over HTTP (an error status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except OSError:
        return False


def _bucket() -> str:
    return os.environ.get("SESSIONSTORE_TEST_BUCKET") or DEFAULT_BUCKET


def _s3(name: str, endpoint: str) -> Emulator:
    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    return Emulator(name, endpoint, _bucket(), options)


_LOCALSTACK_S3_VARIABLES = ("SESSIONSTORE_TEST_S3_ENDPOINT", "AWS_ENDPOINT_URL")
_MOTO_S3_VARIABLES = ("SESSIONSTORE_TEST_MOTO_ENDPOINT",)
_FAKE_GCS_VARIABLES = ("SESSIONSTORE_TEST_GCS_ENDPOINT", "STORAGE_EMULATOR_HOST")
_AZURITE_VARIABLES = (
    "SESSIONSTORE_TEST_AZURE_CONNECTION_STRING",
    "AZURE_STORAGE_CONNECTION_STRING",
)


def localstack_s3_emulator(port: int | None = None) -> Emulator:
    """LocalStack's S3: on ``port`` if given, else ``SESSIONSTORE_TEST_S3_ENDPOINT``,
    ``AWS_ENDPOINT_URL``, or 127.0.0.1:4566."""
    endpoint = f"http://{HOST}:{port}" if port else _configured(*_LOCALSTACK_S3_VARIABLES)
    return _s3("localstack_s3", endpoint or f"http://{HOST}:4566")


def moto_s3_emulator(port: int | None = None) -> Emulator:
    """moto server's S3: on ``port`` if given, else ``SESSIONSTORE_TEST_MOTO_ENDPOINT``,
    or 127.0.0.1:5000."""
    endpoint = f"http://{HOST}:{port}" if port else _configured(*_MOTO_S3_VARIABLES)
    return _s3("moto_s3", endpoint or f"http://{HOST}:5000")


def fake_gcs_emulator(port: int | None = None) -> Emulator:
    """fake-gcs-server: on ``port`` if given, else ``SESSIONSTORE_TEST_GCS_ENDPOINT``,
    ``STORAGE_EMULATOR_HOST``, or 127.0.0.1:9023."""
    endpoint = f"http://{HOST}:{port}" if port else _configured(*_FAKE_GCS_VARIABLES)
    return Emulator("fake_gcs", endpoint or f"http://{HOST}:9023", _bucket(), {"project": "test"})


def azurite_emulator(port: int | None = None) -> Emulator:
    """Azurite's blob service: on ``port`` if given, else the connection string in
    ``SESSIONSTORE_TEST_AZURE_CONNECTION_STRING`` or ``AZURE_STORAGE_CONNECTION_STRING``,
    or Azurite's development account on 127.0.0.1:10000."""
    conn = azure_connection_string(port) if port else _configured(*_AZURITE_VARIABLES)
    conn = conn or AZURITE_CONNECTION_STRING
    endpoint = next(
        (p.split("=", 1)[1] for p in conn.split(";") if p.startswith("BlobEndpoint=")),
        f"http://{HOST}:10000/devstoreaccount1",
    )
    return Emulator("azurite", endpoint, _bucket(), {"connection_string": conn})


@dataclass(frozen=True)
class Source:
    """Where an emulator comes from: the environment, or the local cloud."""

    cloud_name: str  # the name of its server in sessionstore.localcloud
    variables: tuple[str, ...]  # the environment variables that configure it
    build: Callable[[int | None], Emulator]
    probe: str  # a path that answers when it is up

    def configured(self) -> str | None:
        """The variable the user set for it, if any (one the local cloud merely printed
        does not count)."""
        name = next((n for n in self.variables if os.environ.get(n)), None)
        return None if name is None or printed_by_localcloud(name) else name

    def printed_and_answering(self) -> Emulator | None:
        """The endpoint the local cloud printed for it, if one is set and answers."""
        name = next((n for n in self.variables if os.environ.get(n)), None)
        if name is None or not printed_by_localcloud(name):
            return None
        emulator = self.build(None)
        return emulator if answers(emulator.endpoint.rstrip("/") + self.probe) else None


#: Emulator name (its fixture's name) -> where it comes from.
SOURCES = {
    "localstack_s3": Source(
        "localstack", _LOCALSTACK_S3_VARIABLES, localstack_s3_emulator, "/_localstack/health"
    ),
    "moto_s3": Source("moto", _MOTO_S3_VARIABLES, moto_s3_emulator, "/"),
    "fake_gcs": Source("fake-gcs", _FAKE_GCS_VARIABLES, fake_gcs_emulator, "/storage/v1/b"),
    "azurite": Source("azurite", _AZURITE_VARIABLES, azurite_emulator, "?comp=list"),
}

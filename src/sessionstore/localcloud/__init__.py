"""The local cloud: LocalStack (S3), fake-gcs-server (GCS), Azurite (Azure Blob) and moto
server (a second S3) on 127.0.0.1, without Docker.

``python -m sessionstore.localcloud up|down|status|env`` (or ``sessionstore localcloud``
with the ``cli`` extra) and the pytest plugin (:mod:`sessionstore.testing`) both use
:class:`LocalCloud`. The emulators are installed on first use into a per-user cache
(``$SESSIONSTORE_LOCALCLOUD_CACHE``, default ``~/.cache/sessionstore/localcloud``) at the
versions pinned in ``pins/``, and reused by every project. Needs Python 3.11 and, for
Azurite only, Node.js 20+ with npm. POSIX only (process groups, ``ps``, ``fcntl``).
"""

from sessionstore.localcloud.cloud import (
    EXPORTED_ENV,
    RUN_ENV,
    EmulatorState,
    LocalCloud,
    LocalCloudError,
    default_run_dir,
    export_lines,
    printed_by_localcloud,
)
from sessionstore.localcloud.emulators import EMULATORS, Emulator, by_name
from sessionstore.localcloud.installs import CACHE_ENV, InstallError, cache_home

__all__ = [
    "CACHE_ENV",
    "EMULATORS",
    "EXPORTED_ENV",
    "RUN_ENV",
    "Emulator",
    "EmulatorState",
    "InstallError",
    "LocalCloud",
    "LocalCloudError",
    "by_name",
    "cache_home",
    "default_run_dir",
    "export_lines",
    "printed_by_localcloud",
]

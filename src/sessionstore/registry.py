"""The one list of providers: URL scheme -> store class and the pip extra of its SDK.

``open_store`` (:mod:`sessionstore.url`), the lazy imports of :mod:`sessionstore` and
the pytest plugin (:mod:`sessionstore.testing`) all read this table; adding a provider
is one line here (docs/DESIGN.md, "Adding a provider").
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sessionstore.errors import StoreConfigError

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = ["PROVIDERS", "Provider", "lazy_classes"]


@dataclass(frozen=True, slots=True)
class Provider:
    """Where a store class lives (``module:Class``), the extra its SDK needs, and
    where its credentials come from (said when a URL carries some: ``open_store``
    refuses them)."""

    path: str
    extra: str | None = None
    credentials: str = "this store takes no credentials"

    @property
    def module(self) -> str:
        """The module that defines the class."""
        return self.path.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The class name."""
        return self.path.split(":", 1)[1]

    def load(self, what: str) -> type[ObjectSessionStore]:
        """Import the class; ``what`` names the URL or store in the error.

        Raises:
            StoreConfigError: the extra is not installed (the message says what to
                ``pip install``).
        """
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            if self.extra is None or (exc.name or "").startswith("sessionstore"):
                raise
            raise StoreConfigError(
                f"{what} needs the {self.extra} extra ({exc.name} is not installed):"
                f" pip install 'sessionstore[{self.extra}]'"
            ) from exc
        cls: type[ObjectSessionStore] = getattr(module, self.name)
        return cls


_AWS = (
    "use the AWS SDK's own credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
    " AWS_PROFILE, an instance or task role) or the store's aws_access_key_id= and"
    " aws_secret_access_key= options"
)
_GOOGLE = (
    "use Google Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,"
    " `gcloud auth application-default login`, the metadata server) or the store's"
    " credentials= option"
)
_AZURE = (
    "use $AZURE_STORAGE_CONNECTION_STRING, ?account_url= with DefaultAzureCredential"
    " (the Azure SDK's own chain), or the store's connection_string= or credential= option"
)

#: URL scheme -> provider. Several schemes may name one class.
PROVIDERS: Mapping[str, Provider] = {
    "s3": Provider("sessionstore.stores.s3:S3SessionStore", "s3", _AWS),
    "gs": Provider("sessionstore.stores.gcs:GCSSessionStore", "gcs", _GOOGLE),
    "gcs": Provider("sessionstore.stores.gcs:GCSSessionStore", "gcs", _GOOGLE),
    "az": Provider("sessionstore.stores.azure:AzureBlobSessionStore", "azure", _AZURE),
    "azure": Provider("sessionstore.stores.azure:AzureBlobSessionStore", "azure", _AZURE),
    "file": Provider("sessionstore.stores.file:FileSessionStore"),
    "memory": Provider("sessionstore.stores.memory:MemorySessionStore"),
}


def lazy_classes() -> dict[str, str]:
    """Class name -> module of every store that needs an extra (imported on first use)."""
    return {p.name: p.module for p in PROVIDERS.values() if p.extra is not None}

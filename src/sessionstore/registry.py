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
    """Where a store class lives (``module:Class``) and the extra its SDK needs."""

    path: str
    extra: str | None = None

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


#: URL scheme -> provider. Several schemes may name one class.
PROVIDERS: Mapping[str, Provider] = {
    "s3": Provider("sessionstore.stores.s3:S3SessionStore", "s3"),
    "gs": Provider("sessionstore.stores.gcs:GCSSessionStore", "gcs"),
    "gcs": Provider("sessionstore.stores.gcs:GCSSessionStore", "gcs"),
    "az": Provider("sessionstore.stores.azure:AzureBlobSessionStore", "azure"),
    "azure": Provider("sessionstore.stores.azure:AzureBlobSessionStore", "azure"),
    "file": Provider("sessionstore.stores.file:FileSessionStore"),
    "memory": Provider("sessionstore.stores.memory:MemorySessionStore"),
}


def lazy_classes() -> dict[str, str]:
    """Class name -> module of every store that needs an extra (imported on first use)."""
    return {p.name: p.module for p in PROVIDERS.values() if p.extra is not None}

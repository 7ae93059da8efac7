"""The one list of providers: URL scheme -> store class and the pip extra of its SDK.

The built-in providers are the table :data:`BUILTIN_PROVIDERS`; other distributions add
schemes through the entry-point group ``sessionstore.providers`` (name: the URL scheme,
value: ``"module:Class"``), read once, on the first look-up of a scheme that is not
built in, and never imported before a store of that scheme is opened. A third-party
entry never replaces a built-in scheme: it is ignored with a warning on the
``sessionstore`` logger, as is a second distribution claiming a scheme another one
already registered (the first one found on ``sys.path`` wins).

:data:`PROVIDERS` (both together) is what ``open_store`` (:mod:`sessionstore.url`), the
command's help and the pytest plugin (:mod:`sessionstore.testing`) read; the lazy
imports of :mod:`sessionstore` read the built-in table only. Adding a built-in provider
is one line in the table (docs/DESIGN.md, "Adding a provider").
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sessionstore.errors import StoreConfigError

if TYPE_CHECKING:
    from sessionstore.base import ObjectSessionStore

__all__ = [
    "BUILTIN_PROVIDERS",
    "ENTRY_POINT_GROUP",
    "PROVIDERS",
    "Provider",
    "lazy_classes",
    "scheme_list",
]

#: The entry-point group through which other distributions register providers.
ENTRY_POINT_GROUP = "sessionstore.providers"

_log = logging.getLogger("sessionstore")


@dataclass(frozen=True, slots=True)
class Provider:
    """Where a store class lives (``module:Class``), the extra its SDK needs, where its
    credentials come from (said when a URL carries some: ``open_store`` refuses them),
    and, for a provider of another distribution, that distribution's name."""

    path: str
    extra: str | None = None
    credentials: str = "this store takes no credentials"
    distribution: str | None = None

    @property
    def module(self) -> str:
        """The module that defines the class."""
        return self.path.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The class name."""
        return self.path.split(":", 1)[-1]

    def load(self, what: str) -> type[ObjectSessionStore]:
        """Import the class; ``what`` names the URL or store in the error.

        Raises:
            StoreConfigError: the extra is not installed (the message says what to
                ``pip install``), or the provider of another distribution cannot be
                loaded (the message names the distribution and the cause).
        """
        if self.distribution is not None:
            return self._load_registered(what)
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

    def _load_registered(self, what: str) -> type[ObjectSessionStore]:
        """The class an entry point of another distribution names, checked."""
        from sessionstore.base import ObjectSessionStore

        def broken(cause: str) -> StoreConfigError:
            return StoreConfigError(
                f"{what}: the {self.distribution} distribution registers {self.path!r} for"
                f" this scheme (entry point group {ENTRY_POINT_GROUP}), which {cause}:"
                f" reinstall or uninstall {self.distribution}"
            )

        if ":" not in self.path:
            raise broken("names no class (write 'module:Class')")
        try:
            found = getattr(importlib.import_module(self.module), self.name)
        except Exception as exc:  # any failure of a foreign module's import
            raise broken(f"cannot be loaded ({type(exc).__name__}: {exc})") from exc
        if not (isinstance(found, type) and issubclass(found, ObjectSessionStore)):
            raise broken("is not a subclass of sessionstore.ObjectSessionStore")
        return found


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

#: The built-in providers: URL scheme -> provider. Several schemes may name one class.
BUILTIN_PROVIDERS: Mapping[str, Provider] = {
    "s3": Provider("sessionstore.stores.s3:S3SessionStore", "s3", _AWS),
    "gs": Provider("sessionstore.stores.gcs:GCSSessionStore", "gcs", _GOOGLE),
    "gcs": Provider("sessionstore.stores.gcs:GCSSessionStore", "gcs", _GOOGLE),
    "az": Provider("sessionstore.stores.azure:AzureBlobSessionStore", "azure", _AZURE),
    "azure": Provider("sessionstore.stores.azure:AzureBlobSessionStore", "azure", _AZURE),
    "file": Provider("sessionstore.stores.file:FileSessionStore"),
    "memory": Provider("sessionstore.stores.memory:MemorySessionStore"),
    "sqlite": Provider("sessionstore.stores.sqlite:SQLiteSessionStore"),
}


@functools.cache
def _registered() -> Mapping[str, Provider]:
    """The providers of the entry-point group, read once; a built-in scheme, or one an
    earlier distribution claimed, is skipped with a warning."""
    # Imported here: importlib.metadata (email, zipfile, csv, ...) costs a cold start
    # about 25 ms, and only a scheme that is not built in needs it.
    from importlib.metadata import entry_points

    found: dict[str, Provider] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        scheme = entry.name.lower()
        distribution = entry.dist.name if entry.dist is not None else "(unknown)"
        taken = "is built in" if scheme in BUILTIN_PROVIDERS else None
        if taken is None and scheme in found:
            taken = f"is already registered by the {found[scheme].distribution} distribution"
        if taken is not None:
            _log.warning(
                "sessionstore: the %s distribution's provider %s = %r (entry point group %s)"
                " is ignored: %s:// %s",
                distribution,
                entry.name,
                entry.value,
                ENTRY_POINT_GROUP,
                scheme,
                taken,
            )
            continue
        found[scheme] = Provider(entry.value, distribution=distribution)
    return found


class _Providers(Mapping[str, Provider]):
    """The built-in table, then the providers of other distributions (their entry
    points are read only when a scheme outside the table is looked up or listed)."""

    def __getitem__(self, scheme: str) -> Provider:
        builtin = BUILTIN_PROVIDERS.get(scheme)
        return builtin if builtin is not None else _registered()[scheme]

    def __iter__(self) -> Iterator[str]:
        yield from BUILTIN_PROVIDERS
        yield from _registered()

    def __len__(self) -> int:
        return len(BUILTIN_PROVIDERS) + len(_registered())

    def __repr__(self) -> str:
        return f"PROVIDERS({dict(self)!r})"


#: Every provider: URL scheme -> provider, built-in ones first.
PROVIDERS: Mapping[str, Provider] = _Providers()


def scheme_list() -> str:
    """Every scheme as it starts a URL, for messages and help: ``"s3://, gs://, ..."``."""
    return ", ".join(f"{scheme}://" for scheme in PROVIDERS)


def lazy_classes() -> dict[str, str]:
    """Class name -> module of every built-in store, for the lazy names of
    :mod:`sessionstore` (a store's module, and its SDK, load on first access); reading
    it reads no entry point."""
    return {p.name: p.module for p in BUILTIN_PROVIDERS.values()}

"""The provider registry, the lazy imports of ``sessionstore``, ``open_store`` and the
pytest plugin agree: each reads the one table in ``sessionstore.registry``."""

import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sessionstore
from sessionstore import ObjectSessionStore, open_store
from sessionstore import testing as plugin
from sessionstore.errors import StoreConfigError
from sessionstore.registry import PROVIDERS, Provider, lazy_classes

_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.mark.parametrize("scheme", sorted(PROVIDERS))
def test_every_registered_class_is_exported_by_the_package(scheme: str) -> None:
    provider = PROVIDERS[scheme]
    cls = provider.load(scheme)
    assert issubclass(cls, ObjectSessionStore) and not inspect.isabstract(cls)
    assert getattr(sessionstore, provider.name) is cls  # eager or lazy, the same class
    assert provider.name in sessionstore.__all__


def test_every_exported_store_is_registered() -> None:
    registered = {p.name for p in PROVIDERS.values()}
    exported = {
        name
        for name in sessionstore.__all__
        if name != "ObjectSessionStore"
        and isinstance(cls := getattr(sessionstore, name), type)
        and issubclass(cls, ObjectSessionStore)
    }
    assert exported == registered


def test_the_lazy_imports_are_the_stores_that_need_an_extra() -> None:
    code = (
        "import sys, sessionstore\n"
        "print(sorted(n for n in sessionstore.__all__ if n not in vars(sessionstore)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lazy = sorted({p.name for p in PROVIDERS.values() if p.extra is not None})
    assert out.stdout.strip() == repr(lazy)
    extras = tomllib.loads(_PYPROJECT.read_text())["project"]["optional-dependencies"]
    for provider in PROVIDERS.values():
        assert provider.extra is None or provider.extra in extras
        aliases = {p.extra for p in PROVIDERS.values() if p.path == provider.path}
        assert aliases == {provider.extra}, f"{provider.name}: its schemes disagree on the extra"


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("s3://bucket/p/", {}),
        ("gs://bucket/p/", {}),
        ("gcs://bucket/p/", {}),
        ("az://container/p/", {"connection_string": plugin.AZURITE_CONNECTION_STRING}),
        ("azure://container/p/", {"connection_string": plugin.AZURITE_CONNECTION_STRING}),
        ("file:some/dir", {}),
        ("memory://", {}),
    ],
)
def test_open_store_builds_the_registered_class(url: str, options: dict[str, str]) -> None:
    store = open_store(url, **options)
    assert type(store) is PROVIDERS[url.split(":", 1)[0]].load(url)


@pytest.mark.parametrize(
    ("provider", "emulator"),
    [("s3", plugin.s3_emulator), ("gcs", plugin.gcs_emulator), ("azure", plugin.azure_emulator)],
)
def test_the_plugin_builds_the_registered_class(provider: str, emulator: object) -> None:
    store = plugin.emulator_store(provider, emulator())  # type: ignore[operator]
    assert type(store) is PROVIDERS[provider].load(provider)


def test_two_spellings_of_one_place_have_one_place() -> None:
    conn = {"connection_string": plugin.AZURITE_CONNECTION_STRING}
    assert open_store("az://c/p", **conn).place == open_store("azure://c/p/", **conn).place
    assert open_store("gs://b/p").place == open_store("gcs://b/p/").place
    here = open_store("s3://b/p/?endpoint_url=http://127.0.0.1:4566")
    assert here.place != open_store("s3://b/p/").place  # another endpoint, another place
    assert here.place != open_store("s3://b/q/?endpoint_url=http://127.0.0.1:4566").place
    assert open_store("memory://").place != open_store("memory://").place


def test_the_lazy_classes_are_the_cloud_stores() -> None:
    assert lazy_classes() == {
        "S3SessionStore": "sessionstore.stores.s3",
        "GCSSessionStore": "sessionstore.stores.gcs",
        "AzureBlobSessionStore": "sessionstore.stores.azure",
    }


def test_a_missing_extra_is_a_config_error_and_our_own_import_error_is_not() -> None:
    # A module of the SDK missing: the extra is not installed, say what to install.
    with pytest.raises(StoreConfigError) as info:
        Provider("no_such_sdk_module:Store", "s3").load("'s3://b/'")
    assert str(info.value) == (
        "'s3://b/' needs the s3 extra (no_such_sdk_module is not installed):"
        " pip install 'sessionstore[s3]'"
    )
    # One of our own modules missing, or any module of a store that needs no extra:
    # a bug or a broken install, raised as it is (no extra would fix it).
    for provider in (
        Provider("sessionstore.stores.no_such_store:Store", "s3"),
        Provider("no_such_sdk_module:Store"),
    ):
        with pytest.raises(ModuleNotFoundError) as missing:
            provider.load("x")
        assert missing.value.name == provider.module


@pytest.mark.parametrize("scheme", sorted(PROVIDERS))
def test_every_provider_with_an_sdk_says_where_its_credentials_come_from(scheme: str) -> None:
    provider = PROVIDERS[scheme]
    default = Provider("x:Y").credentials
    assert (provider.credentials == default) is (provider.extra is None)

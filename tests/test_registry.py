"""The provider registry, the lazy imports of ``sessionstore``, ``open_store``, the
command's help and the pytest plugin agree: each reads ``sessionstore.registry``, whose
built-in table the README documents and which other distributions extend through the
``sessionstore.providers`` entry-point group (tests/entry_point_provider is one)."""

import importlib.metadata
import inspect
import logging
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import sessionstore
from sessionstore import MemorySessionStore, ObjectSessionStore, open_store
from sessionstore import registry as registry_module
from sessionstore import testing as plugin
from sessionstore.errors import StoreConfigError
from sessionstore.registry import (
    BUILTIN_PROVIDERS,
    ENTRY_POINT_GROUP,
    PROVIDERS,
    Provider,
    lazy_classes,
    scheme_list,
)

_ROOT = Path(__file__).resolve().parents[1]
_PYPROJECT = _ROOT / "pyproject.toml"


@pytest.mark.parametrize("scheme", sorted(BUILTIN_PROVIDERS))
def test_every_builtin_class_is_exported_by_the_package(scheme: str) -> None:
    provider = BUILTIN_PROVIDERS[scheme]
    cls = provider.load(scheme)
    assert issubclass(cls, ObjectSessionStore) and not inspect.isabstract(cls)
    assert getattr(sessionstore, provider.name) is cls  # eager or lazy, the same class
    assert provider.name in sessionstore.__all__
    assert PROVIDERS[scheme] is provider and provider.distribution is None


def test_every_exported_store_is_builtin() -> None:
    registered = {p.name for p in BUILTIN_PROVIDERS.values()}
    exported = {
        name
        for name in sessionstore.__all__
        if name != "ObjectSessionStore"
        and isinstance(cls := getattr(sessionstore, name), type)
        and issubclass(cls, ObjectSessionStore)
    }
    assert exported == registered


def test_every_builtin_store_is_a_name_of_the_package_and_no_sdk_loads_at_import() -> None:
    code = (
        "import sys, sessionstore\n"
        "print(sorted(n for n in sessionstore.__all__ if n not in vars(sessionstore)))\n"
        "print(sorted(getattr(sessionstore, n).__name__ for n in sessionstore.__all__"
        " if n.endswith('SessionStore')"
        " and n not in ('ObjectSessionStore', 'SyncSessionStore', 'SessionStore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lazy, exported = out.stdout.splitlines()
    classes = sorted({p.name for p in BUILTIN_PROVIDERS.values()})
    assert exported == repr(classes)
    eager = {"FileSessionStore", "MemorySessionStore"}  # imported by sessionstore itself
    assert lazy == repr(sorted(set(classes) - eager))
    assert sorted(lazy_classes()) == classes
    assert all(lazy_classes()[p.name] == p.module for p in BUILTIN_PROVIDERS.values())
    extras = tomllib.loads(_PYPROJECT.read_text())["project"]["optional-dependencies"]
    for provider in BUILTIN_PROVIDERS.values():
        assert provider.extra is None or provider.extra in extras
        aliases = {p.extra for p in BUILTIN_PROVIDERS.values() if p.path == provider.path}
        assert aliases == {provider.extra}, f"{provider.name}: its schemes disagree on the extra"


def _readme_table() -> list[tuple[str, str]]:
    """The rows (URL cell, store cell) of the README's "Stores and URLs" table."""
    text = (_ROOT / "README.md").read_text()
    section = text.split("### Stores and URLs", 1)[1].split("\n\n", 2)[1]
    rows = [line.split(" | ") for line in section.splitlines()[2:]]
    return [(row[0], row[1]) for row in rows]


def test_the_builtin_providers_are_the_ones_the_readme_lists() -> None:
    rows = _readme_table()
    schemes = {s for url, _ in rows for s in re.findall(r"`([a-z0-9]+):", url)}
    assert schemes == set(BUILTIN_PROVIDERS)
    classes = {m for _, store in rows for m in re.findall(r"`(\w+SessionStore)\(", store)}
    assert classes == {p.name for p in BUILTIN_PROVIDERS.values()}


#: URLs the README's table cannot give as they are (an alias without a bucket of its
#: own, credentials that never go in a URL); every other scheme opens its README example.
_EXAMPLES: dict[str, tuple[str, dict[str, str]]] = {
    "gcs": ("gcs://bucket/p/", {}),
    "az": ("az://container/p/", {"connection_string": plugin.AZURITE_CONNECTION_STRING}),
    "azure": ("azure://container/p/", {"connection_string": plugin.AZURITE_CONNECTION_STRING}),
}


def readme_example(scheme: str) -> tuple[str, dict[str, str]]:
    """A URL of ``scheme`` and the options it needs: the README's first, unless above."""
    if scheme in _EXAMPLES:
        return _EXAMPLES[scheme]
    for url_cell, _ in _readme_table():
        for url in re.findall(r"`([a-z0-9]+:[^`]*)`", url_cell):
            if url.split(":", 1)[0] == scheme:
                return url, {}
    raise AssertionError(f"the README's Stores and URLs table has no {scheme}: URL")


@pytest.mark.parametrize("scheme", sorted(BUILTIN_PROVIDERS))
def test_open_store_builds_the_registered_class(scheme: str) -> None:
    url, options = readme_example(scheme)
    store = open_store(url, **options)
    assert type(store) is BUILTIN_PROVIDERS[scheme].load(url)


@pytest.mark.parametrize(
    ("provider", "emulator"),
    [
        ("s3", plugin.localstack_s3_emulator),
        ("gcs", plugin.fake_gcs_emulator),
        ("azure", plugin.azurite_emulator),
    ],
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


@pytest.mark.parametrize("scheme", sorted(BUILTIN_PROVIDERS))
def test_every_provider_with_an_sdk_says_where_its_credentials_come_from(scheme: str) -> None:
    provider = BUILTIN_PROVIDERS[scheme]
    default = Provider("x:Y").credentials
    assert (provider.credentials == default) is (provider.extra is None)


# ----------------------------------------------------- a provider of another distribution


def _echo_installed() -> None:
    """Fail (never skip) when tests/entry_point_provider is not installed."""
    if not any(e.name == "echo" for e in entry_points(group=ENTRY_POINT_GROUP)):
        pytest.fail(
            "the test distribution tests/entry_point_provider (sessionstore-echo) is not"
            " installed in this Python: run scripts/test, which installs it (or"
            " `python -m pip install tests/entry_point_provider`)",
            pytrace=False,
        )


async def test_a_provider_registered_only_by_an_entry_point_opens_by_url() -> None:
    _echo_installed()
    provider = PROVIDERS["echo"]
    assert "echo" in PROVIDERS and "echo" not in BUILTIN_PROVIDERS
    assert provider == Provider(
        "sessionstore_echo:EchoSessionStore", distribution="sessionstore-echo"
    )
    assert "echo://" in scheme_list() and scheme_list().startswith("s3://, ")
    async with open_store("echo://?max_size=2") as store:
        assert type(store).__name__ == "EchoSessionStore"
        assert type(store) is provider.load("echo")
        assert isinstance(store, MemorySessionStore) and store.provider == "echo"
        await store.save("s1", {"tick": 1})
        assert await store.load("s1") == {"tick": 1}
    assert not hasattr(sessionstore, "EchoSessionStore")  # not a name of this package


def test_the_entry_point_provider_is_imported_only_when_opened() -> None:
    _echo_installed()
    code = (
        "import sys, sessionstore\n"
        "from sessionstore import registry\n"
        "sessionstore.open_store('memory://')\n"
        "print(registry._registered.cache_info().currsize, 'sessionstore_echo' in sys.modules)\n"
        "print(sorted(registry.PROVIDERS)[:0], 'sessionstore_echo' in sys.modules)\n"
        "sessionstore.open_store('echo://')\n"
        "print('sessionstore_echo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:3] == ["0 False", "[] False", "True"]


def test_sessionstore_help_lists_the_entry_point_scheme() -> None:
    _echo_installed()
    result = subprocess.run(
        [sys.executable, "-m", "sessionstore", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    listed = " ".join(result.stdout.split())  # click wraps the line
    assert f"by URL ({scheme_list()})." in listed and "echo://" in listed


# -------------------------------------------------- entry points of made-up distributions


def _distribution(where: Path, name: str, entries: dict[str, str]) -> Path:
    """A distribution's metadata (no code) under ``where``, registering ``entries``."""
    info = where / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{scheme} = {value}\n" for scheme, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    return where


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The entry points read anew, with what the test adds to ``sys.path``."""
    registry_module._registered.cache_clear()
    yield monkeypatch
    registry_module._registered.cache_clear()


def test_the_entry_points_are_read_once_and_not_for_a_builtin_scheme(
    fresh_registry: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return entry_points(**kwargs)

    fresh_registry.setattr(importlib.metadata, "entry_points", counted)
    assert PROVIDERS["s3"] is BUILTIN_PROVIDERS["s3"] and PROVIDERS.get("memory") is not None
    assert "file" in PROVIDERS and lazy_classes() and calls == []
    assert PROVIDERS.get("nosuch") is None and "nosuch" not in PROVIDERS
    assert len(PROVIDERS) == len(list(PROVIDERS)) >= len(BUILTIN_PROVIDERS)
    assert list(PROVIDERS)[: len(BUILTIN_PROVIDERS)] == list(BUILTIN_PROVIDERS)
    assert calls == [{"group": "sessionstore.providers"}]
    assert repr(PROVIDERS).startswith("PROVIDERS({'s3': Provider(")


def test_a_builtin_scheme_or_one_already_taken_is_ignored_with_a_warning(
    fresh_registry: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _distribution(tmp_path / "a", "first-dist", {"S3": "evil:Store", "Dup": "m1:A"})
    second = _distribution(tmp_path / "b", "second-dist", {"dup": "m2:B"})
    fresh_registry.syspath_prepend(str(second))
    fresh_registry.syspath_prepend(str(first))  # first on sys.path: found first
    with caplog.at_level(logging.WARNING, logger="sessionstore"):
        assert PROVIDERS["s3"] is BUILTIN_PROVIDERS["s3"]
        assert PROVIDERS["dup"] == Provider("m1:A", distribution="first-dist")
        assert "S3" not in PROVIDERS and list(PROVIDERS).count("s3") == 1
    assert [r.getMessage() for r in caplog.records] == [
        "sessionstore: the first-dist distribution's provider S3 = 'evil:Store' (entry point"
        " group sessionstore.providers) is ignored: s3:// is built in",
        "sessionstore: the second-dist distribution's provider dup = 'm2:B' (entry point"
        " group sessionstore.providers) is ignored: dup:// is already registered by the"
        " first-dist distribution",
    ]
    assert {r.levelno for r in caplog.records} == {logging.WARNING}


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ("no_such_module_4711:Store", "cannot be loaded (ModuleNotFoundError: No module named"),
        ("json:NoSuchClass", "cannot be loaded (AttributeError: module 'json' has no attribute"),
        ("json:loads", "is not a subclass of sessionstore.ObjectSessionStore"),
        ("sessionstore.errors:StoreConfigError", "is not a subclass of sessionstore.Object"),
        ("no_colon_here", "names no class (write 'module:Class')"),
    ],
)
def test_a_broken_entry_point_is_a_config_error_naming_its_distribution(
    fresh_registry: pytest.MonkeyPatch, tmp_path: Path, value: str, cause: str
) -> None:
    fresh_registry.syspath_prepend(str(_distribution(tmp_path, "broken-dist", {"bad": value})))
    with pytest.raises(StoreConfigError) as info:
        open_store("bad://x/")
    assert str(info.value).startswith(
        f"'bad://x/': the broken-dist distribution registers {value!r} for this scheme"
        f" (entry point group sessionstore.providers), which {cause}"
    )
    assert str(info.value).endswith(": reinstall or uninstall broken-dist")
    assert "bad://" in scheme_list()
    assert type(open_store("memory://")) is MemorySessionStore  # the others still open


def test_a_broken_entry_point_breaks_neither_help_nor_other_schemes(tmp_path: Path) -> None:
    where = _distribution(tmp_path, "broken-dist", {"bad": "no_such_module_4711:Store"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), *sys.path])}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sessionstore", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "bad://" in helped.stdout
    assert run("ls", "memory://").returncode == 0
    failed = run("ls", "bad://x/")
    assert failed.returncode == 2
    assert "the broken-dist distribution registers" in failed.stderr
    assert "No module named 'no_such_module_4711'" in failed.stderr

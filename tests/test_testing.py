"""The pytest plugin package: its public names, one name per emulator, the old names."""

import pytest

from sessionstore import testing
from sessionstore.testing import emulators, plugin


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert plugin.pytest_addoption is testing.pytest_addoption  # the plugin is the package


def test_each_emulator_has_one_name_for_its_fixture_function_and_messages() -> None:
    for name, source in emulators.SOURCES.items():
        assert source.build.__name__ == f"{name}_emulator"
        assert getattr(testing, f"{name}_emulator") is source.build
        assert source.build(None).name == name and source.build(1234).name == name
        assert name in plugin.__all__ and name in testing.__all__  # its fixture


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("s3_emulator", "localstack_s3_emulator"),
        ("moto_emulator", "moto_s3_emulator"),
        ("gcs_emulator", "fake_gcs_emulator"),
        ("azure_emulator", "azurite_emulator"),
    ],
)
def test_the_old_names_of_the_emulator_functions_still_work_with_a_warning(
    old: str, new: str
) -> None:
    with pytest.warns(DeprecationWarning, match=f"testing.{old} is deprecated: use {new}"):
        assert getattr(testing, old) is getattr(testing, new)
    assert old not in testing.__all__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        testing.no_such_name  # noqa: B018

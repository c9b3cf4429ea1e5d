"""A custom `package.module:Class` that cannot be imported or built is bad configuration,
reported as a ConfigError (exit 2) naming the mapping and why: a module failing as it runs
(NameError, SyntaxError), a class missing abstract methods and a constructor refusing the
source escaped as their own exceptions, which the command line reports as exit 1
"unexpected"."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.errors import ConfigError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema

ONE = KeySchema((("id", "S"),))


@pytest.mark.parametrize(
    ("spec", "source", "says"),
    [
        (
            "tests.unit.sample_mapping_typo:OrdersMapping",
            ONE,
            "importing tests.unit.sample_mapping_typo failed: NameError: name 'IdentityMaping'",
        ),
        (
            "tests.unit.sample_mapping:Unfinished",
            ONE,
            "Unfinished does not define owns, source_key_for, target_keys",
        ),
        (
            "tests.unit.sample_mapping:SingleKeyOnly",
            KeySchema((("id", "S"), ("at", "N"))),
            "building it on the source key id (S, hash), at (N, range) failed: ValueError: "
            "SingleKeyOnly takes a table keyed by one attribute",
        ),
    ],
)
def test_a_custom_mapping_that_cannot_be_loaded_is_a_config_error(
    spec: str, source: KeySchema, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_mapping(spec, source)
    assert says in str(err.value)
    assert str(err.value).startswith(f"mapping {spec!r}: ")


def test_a_syntax_error_in_the_users_module_names_its_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_orders.py").write_text("class Orders(:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"SyntaxError: .*broken_orders\.py, line 1"):
        build_mapping("broken_orders:Orders", ONE)


def test_a_working_custom_mapping_still_builds() -> None:
    assert build_mapping("tests.unit.sample_mapping:SingleKeyOnly", ONE).source_key == ONE

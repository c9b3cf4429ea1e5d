"""The handlers' settings from the environment: where the migration file is read from."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite import runtime
from dualwrite.errors import ConfigError
from dualwrite.runtime import RuntimeSettings
from tests.conftest import MIGRATIONS


def test_a_relative_config_is_read_from_the_functions_code_directory() -> None:
    env = {"DUALWRITE_CONFIG": "migrations/coretable.yaml", "LAMBDA_TASK_ROOT": "/var/task"}
    assert RuntimeSettings.from_env(env).config_path == "/var/task/migrations/coretable.yaml"
    # an emulator runs the same package from another directory
    env["LAMBDA_TASK_ROOT"] = "/tmp/fn-code"
    assert RuntimeSettings.from_env(env).config_path == "/tmp/fn-code/migrations/coretable.yaml"


def test_an_absolute_config_and_one_outside_lambda_are_left_as_given() -> None:
    absolute = {"DUALWRITE_CONFIG": "/opt/m.yaml", "LAMBDA_TASK_ROOT": "/var/task"}
    assert RuntimeSettings.from_env(absolute).config_path == "/opt/m.yaml"
    local = {"DUALWRITE_CONFIG": "migrations/coretable.yaml"}
    assert RuntimeSettings.from_env(local).config_path == "migrations/coretable.yaml"


def test_a_missing_config_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DUALWRITE_CONFIG is not set"):
        RuntimeSettings.from_env({"LAMBDA_TASK_ROOT": "/var/task"})


def test_a_relative_config_is_read_from_the_task_root_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "task"
    (code / "migrations").mkdir(parents=True)
    (code / "migrations" / "coretable.yaml").write_text((MIGRATIONS / "coretable.yaml").read_text())
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("DUALWRITE_CONFIG", "migrations/coretable.yaml")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(code))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("DUALWRITE_REPLICATOR_FUNCTION", "dualwrite-replicator")
    runtime._built.cache_clear()
    try:
        rt = runtime.shared()
    finally:
        runtime._built.cache_clear()
    assert [r.name for r in rt.migration.routes] == ["servers", "memberships"]
    assert rt.replicator_function == "dualwrite-replicator"

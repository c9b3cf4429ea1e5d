"""infra/Makefile, the SAM `BuildMethod: makefile` builds: every built resource has its target,
the layer gets pyproject's runtime dependencies minus the CLI-only ones, and every function's
package holds the shared core, its component and the migration file, and its Handler imports
from the package alone (no repository on the path, no typer/rich/moto)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_infra_template import EXPECTED_HANDLERS, ROOT, load_template

MAKEFILE = ROOT / "infra" / "Makefile"
#: never in a Lambda package: the CLI's dependencies and the emulator
NOT_IN_LAMBDA = ("typer", "rich", "moto")
OURS = ("dualwrite", "stream_replicator", "backfill", "reconciler")


def make(*args: str, artifacts: Path | None = None) -> subprocess.CompletedProcess[str]:
    env_args = [f"ARTIFACTS_DIR={artifacts}"] if artifacts is not None else []
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", str(MAKEFILE), *args, *env_args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # like SAM: run somewhere else than the repository (a scratch copy of infra/)
        cwd=artifacts.parent if artifacts is not None else Path("/"),
    )


def built_resources() -> dict[str, dict[str, Any]]:
    template = load_template()
    return {
        name: res
        for name, res in template["Resources"].items()
        if res.get("Metadata", {}).get("BuildMethod") == "makefile"
    }


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sam-build")
    out = {}
    for name in EXPECTED_HANDLERS:
        artifacts = root / name
        done = make(f"build-{name}", artifacts=artifacts)
        assert done.returncode == 0, done.stderr
        out[name] = artifacts
    return out


IMPORT_CHECK = r"""
import importlib, json, os, sys
artifacts_and_handlers = json.loads(sys.argv[1])
ours = tuple(json.loads(sys.argv[2]))
for blocked in json.loads(sys.argv[3]):
    sys.modules[blocked] = None  # `import typer` now raises ImportError
# the repository's editable install must not serve the modules: only the package may
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
base_path = [p for p in sys.path if p not in ("", os.getcwd())]
results = {}
for name, (artifacts, handler) in artifacts_and_handlers.items():
    for mod in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[mod]
    sys.path[:] = [artifacts, *base_path]
    os.environ["DUALWRITE_CONFIG"] = os.path.join(artifacts, "migrations", "coretable.yaml")
    module_name, _, attr = handler.rpartition(".")
    try:
        func = getattr(importlib.import_module(module_name), attr)
        strays = sorted(
            m for m, mod in sys.modules.items()
            if m.split(".")[0] in ours and mod is not None and getattr(mod, "__file__", None)
            and not os.path.realpath(mod.__file__).startswith(os.path.realpath(artifacts))
        )
        results[name] = {"ok": callable(func) and not strays, "strays": strays,
                         "error": None if callable(func) else f"{handler} is not callable"}
    except Exception as exc:
        results[name] = {"ok": False, "strays": [], "error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def import_results(packages: dict[str, Path]) -> dict[str, Any]:
    spec = {name: [str(packages[name]), EXPECTED_HANDLERS[name]] for name in packages}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_CHECK,
            json.dumps(spec),
            json.dumps(OURS),
            json.dumps(NOT_IN_LAMBDA),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=str(next(iter(packages.values())).parent),
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "HOME": "/tmp"},
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def test_every_built_resource_has_a_make_target(tmp_path: Path) -> None:
    resources = built_resources()
    assert set(EXPECTED_HANDLERS) | {"DependenciesLayer"} == set(resources)
    for name, res in resources.items():
        assert res["Metadata"]["BuildArchitecture"] == "arm64", name
        dry = make("-n", f"build-{name}", artifacts=tmp_path / name)
        assert dry.returncode == 0, (name, dry.stderr)
    missing = make("-n", "build-NoSuchFunction", artifacts=tmp_path / "x")
    assert missing.returncode != 0


def test_a_build_without_artifacts_dir_refuses() -> None:
    done = make("build-ReplicatorFunction")
    assert done.returncode != 0
    assert "ARTIFACTS_DIR" in done.stderr


def test_layer_dependencies_are_pyproject_minus_cli_only() -> None:
    done = make("lambda-requirements")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert listed == [d for d in declared if not d.lower().startswith(("typer", "rich"))]
    names = {d.split(">")[0].split("=")[0].lower() for d in listed}
    assert "aws-lambda-powertools" in names and "aws-xray-sdk" in names
    assert not names & set(NOT_IN_LAMBDA)


def test_layer_layout(tmp_path: Path) -> None:
    artifacts = tmp_path / "DependenciesLayer"
    done = make("build-DependenciesLayer", "SKIP_DEPENDENCIES=1", artifacts=artifacts)
    assert done.returncode == 0, done.stderr
    # Lambda puts a layer's python/ on sys.path; nothing else is left behind
    assert [p.name for p in artifacts.iterdir()] == ["python"]


@pytest.mark.parametrize("function", sorted(EXPECTED_HANDLERS))
def test_package_contents(packages: dict[str, Path], function: str) -> None:
    artifacts = packages[function]
    module = EXPECTED_HANDLERS[function].rpartition(".")[0]
    component = module.split(".")[0]
    top = {p.name for p in artifacts.iterdir()}
    assert {"dualwrite", component, "migrations"} <= top
    assert not top & {"tests", "bench", "infra", ".venv"}
    # the migration file the template points DUALWRITE_CONFIG at (<MigrationFile>, read from
    # LAMBDA_TASK_ROOT, the package's root)
    migration_file = load_template()["Parameters"]["MigrationFile"]["Default"]
    assert (artifacts / migration_file).is_file()
    assert not (artifacts / "dualwrite" / "cli").exists()
    assert not list(artifacts.rglob("__pycache__"))
    assert (artifacts / "dualwrite" / "wire.py").is_file()


@pytest.mark.parametrize("function", sorted(EXPECTED_HANDLERS))
def test_packaged_handler_exists_and_imports(
    packages: dict[str, Path], import_results: dict[str, Any], function: str
) -> None:
    handler = EXPECTED_HANDLERS[function]
    module_path = handler.rpartition(".")[0].replace(".", "/") + ".py"
    assert (packages[function] / module_path).is_file(), f"{module_path} is not in the package"
    result = import_results[function]
    assert result["error"] is None, result["error"]
    assert result["strays"] == [], f"imported from outside the package: {result['strays']}"
    assert result["ok"]


def test_samconfig_is_a_sane_default_without_account_details() -> None:
    text = (ROOT / "infra" / "samconfig.toml").read_text()
    config = tomllib.loads(text)
    assert config["default"]["global"]["parameters"]["stack_name"] == "dualwrite"
    deploy = config["default"]["deploy"]["parameters"]
    # CAPABILITY_IAM suffices: the template names no IAM resource
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    template = load_template()
    for res in template["Resources"].values():
        assert "RoleName" not in res.get("Properties", {})
    assert deploy["confirm_changeset"] is True
    assert "parameter_overrides" not in deploy
    assert not re.search(r"\b\d{12}\b", text), "an account id in samconfig.toml"
    assert "region" not in deploy

"""Shared fixtures: in-process moto (functional), the embedded emulator (e2e), CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dualwrite.aws.clients import AwsSettings, Clients

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"
DUALWRITE = [sys.executable, "-m", "dualwrite"]
#: collection order, slowest kinds first: pytest-xdist hands tests out in this order, so the
#: long e2e tests start early instead of leaving one worker busy at the end
_ORDER = {"e2e": 0, "rehearsal": 1, "ministack": 1, "functional": 2, "unit": 3}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if _kind(item) in ("ministack", "rehearsal"):
            # one worker runs them all: one install of its virtualenv, and never two servers
            # (each with its Lambda workers) competing for the CPU at once
            item.add_marker(pytest.mark.xdist_group("ministack"))
        elif _uses_module_fixture(item):
            # a module-scoped fixture (a SAM build, a parsed template) is made once per
            # worker that runs the module: keep the module on one worker
            item.add_marker(pytest.mark.xdist_group(item.path.relative_to(ROOT).as_posix()))
    items.sort(key=lambda item: _ORDER.get(_kind(item), len(_ORDER)))


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None or not item.path.is_relative_to(ROOT):
        return False
    return any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs)


def _kind(item: pytest.Item) -> str:
    if not item.path.is_relative_to(ROOT / "tests"):
        return ""
    parts = item.path.relative_to(ROOT / "tests").parts
    return parts[0] if len(parts) > 1 else ""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials, a region, and botocore's account endpoint mode off (moto gap)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_clients(aws_env: None) -> Iterator[Clients]:
    """Clients against in-process moto (mock_aws), fresh per test."""
    from moto import mock_aws

    with mock_aws():
        yield Clients(AwsSettings(region="us-east-1"))


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    """Runs the real `dualwrite` command against one endpoint."""

    endpoint: str
    cwd: Path = ROOT

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
            PYTHONUNBUFFERED="1",
        )
        return env

    def argv(self, config: str | Path | None, *args: str) -> list[str]:
        argv = [*DUALWRITE, "--endpoint-url", self.endpoint]
        if config is not None:
            argv += ["--config", str(config)]
        return [*argv, *args]

    def run(self, config: str | Path | None, *args: str, timeout: float = 300) -> CliResult:
        proc = subprocess.run(
            self.argv(config, *args),
            cwd=self.cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def start(self, config: str | Path | None, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(config, *args),
            cwd=self.cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def emulator() -> Iterator[str]:
    """A private embedded emulator (moto server on 127.0.0.1, a free port) per test."""
    from dualwrite.emulator import Emulator

    with Emulator() as emu:
        yield emu.endpoint


@pytest.fixture
def cli(emulator: str) -> Cli:
    return Cli(emulator)


@pytest.fixture
def emulator_clients(emulator: str) -> Clients:
    """boto3 clients on the same emulator the CLI uses (to plant data and check results)."""
    return Clients(
        AwsSettings(endpoint_url=emulator, region="us-east-1", emulator_credentials=True)
    )

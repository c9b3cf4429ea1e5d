"""ministack fixtures: a private server per test (its own process group, stopped whatever
the test did) and clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dualwrite.aws.clients import AwsSettings, Clients
from tests.ministack_harness import Ministack, MinistackUnavailable


@pytest.fixture
def ministack(tmp_path: Path) -> Iterator[Ministack]:
    server = Ministack(log_path=tmp_path / "ministack.log")
    try:
        server.start()
    except MinistackUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ms_clients(ministack: Ministack) -> Clients:
    return Clients(
        AwsSettings(endpoint_url=ministack.endpoint, region="us-east-1", emulator_credentials=True)
    )

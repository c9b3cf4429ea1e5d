"""Ctrl-C in `dualwrite backfill`, on moto: the run stops at a checkpoint, says so, reports
what it copied (`"interrupted": true` in --json), exits 130, and the next run resumes from
the checkpoints to an exact copy."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from backfill.job import run_backfill
from dualwrite import seed as seeding
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.backoff import RateLimiter
from dualwrite.cli import app as cli_app
from dualwrite.cli import cmd_backfill
from dualwrite.control import ControlStore
from tests.functional.test_backfill_support import (
    CORETABLE,
    assert_exact,
    coretable,
    expected_target,
    prepare,
    scan_all,
    seed,
)


@pytest.fixture
def clients(aws_env: None) -> Iterator[Clients]:
    from moto import mock_aws

    with mock_aws():
        yield Clients(AwsSettings(region="us-east-1"))


def run(config: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as done:
        cli_app.main(["--config", str(config), *args])
    code = done.value.code
    return code if isinstance(code, int) else 0


def test_ctrl_c_stops_at_a_checkpoint_says_so_and_the_next_run_resumes(
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = seeding.generate(30, 60, seed=3)
    seed(clients, data.servers, data.memberships)
    prepare(clients, coretable())
    config = tmp_path / "dualwrite.yaml"
    config.write_text(yaml.safe_dump(CORETABLE))
    real = cmd_backfill.run_backfill
    pressed: list[int] = []

    def ctrl_c_after_the_first_page(*args: Any, on_progress: Any = None, **kw: Any) -> Any:
        def progress(route: str, items: int, total: int) -> None:
            if items and not pressed:  # a page copied (the first call reports checkpoints)
                pressed.append(items)
                os.kill(os.getpid(), signal.SIGINT)
            if on_progress is not None:
                on_progress(route, items, total)

        return real(*args, on_progress=progress, scan_limit=10, **kw)

    monkeypatch.setattr(cmd_backfill, "run_backfill", ctrl_c_after_the_first_page)
    capsys.readouterr()
    assert run(config, "backfill", "--json", "--workers", "1", "--segments", "1") == 130
    out = capsys.readouterr()
    first = json.loads(out.out)
    assert pressed and first["interrupted"] is True
    assert "stopping: each segment saves its checkpoint" in out.err
    assert "`dualwrite backfill` resumes" in out.err
    routes = {r["route"]: r for r in first["routes"]}
    assert not all(r["complete"] for r in routes.values())
    copied = sum(r["items_read"] for r in routes.values())
    assert 0 < copied < len(data.servers) + len(data.memberships)

    monkeypatch.setattr(cmd_backfill, "run_backfill", real)
    assert run(config, "backfill", "--json", "--workers", "1", "--segments", "1") == 0
    second = json.loads(capsys.readouterr().out)
    assert "interrupted" not in second
    assert all(r["complete"] for r in second["routes"])
    assert sum(r["segments_resumed"] for r in second["routes"]) >= 1
    assert_exact(scan_all(clients, "CoreTable"), expected_target(clients, coretable()))


def test_ctrl_c_in_any_command_says_interrupted(
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """typer turns KeyboardInterrupt into a silent exit 130: the command line says why."""
    config = tmp_path / "dualwrite.yaml"
    config.write_text(yaml.safe_dump(CORETABLE))

    def pressed(*_args: Any, **_kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("dualwrite.status.gather", pressed)
    capsys.readouterr()
    assert run(config, "status") == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


def test_a_stop_does_not_wait_out_a_small_capacity_budget(clients: Clients) -> None:
    """Under --max-wcu the writer waits debt/rate seconds for each batch (minutes at a small
    budget); a Ctrl-C during that wait stops the run within a quarter second of the budget's
    clock, the page in hand redone by the next run, which ends in an exact copy."""
    data = seeding.generate(30, 60, seed=3)
    seed(clients, data.servers, data.memberships)
    migration = coretable()
    prepare(clients, migration)
    store = ControlStore(clients.dynamodb, migration.control_table)
    stop = threading.Event()
    now = [0.0]
    waited: list[float] = []

    def sleep(seconds: float) -> None:  # the budget's clock; Ctrl-C comes during a wait
        waited.append(seconds)
        now[0] += seconds
        stop.set()

    budget = RateLimiter(0.5, clock=lambda: now[0], sleep=sleep)
    first = run_backfill(
        migration, clients, store, workers=1, segments=1, stop=stop, rate_limiter=budget
    )

    assert waited and sum(waited) <= 0.5  # not the 50 s that the debt of 25 units asks
    assert not all(r.complete for r in first.routes)
    again = run_backfill(migration, clients, store, workers=1, segments=1)
    assert all(r.complete for r in again.routes)
    assert_exact(scan_all(clients, "CoreTable"), expected_target(clients, migration))


def test_an_interrupted_rerun_of_a_backfilled_route_reports_it_backfilled(
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`backfill --restart` on BACKFILLED routes (put-if-absent), Ctrl-C: the phase stays
    BACKFILLED, and the run said "backfilling" (and "done in") while status said otherwise."""
    data = seeding.generate(30, 60, seed=3)
    seed(clients, data.servers, data.memberships)
    prepare(clients, coretable())
    config = tmp_path / "dualwrite.yaml"
    config.write_text(yaml.safe_dump(CORETABLE))
    assert run(config, "backfill", "--json") == 0
    real = cmd_backfill.run_backfill
    pressed: list[int] = []

    def ctrl_c_after_the_first_page(*args: Any, on_progress: Any = None, **kw: Any) -> Any:
        def progress(route: str, items: int, total: int) -> None:
            if items and not pressed:
                pressed.append(items)
                os.kill(os.getpid(), signal.SIGINT)

        return real(*args, on_progress=progress, scan_limit=10, **kw)

    monkeypatch.setattr(cmd_backfill, "run_backfill", ctrl_c_after_the_first_page)
    capsys.readouterr()
    assert run(config, "backfill", "--restart", "--workers", "1", "--segments", "1") == 130
    out = capsys.readouterr().out
    assert "stopped after" in out and "done in" not in out
    pressed.clear()
    assert (
        run(config, "backfill", "--restart", "--json", "--workers", "1", "--segments", "1") == 130
    )
    again = json.loads(capsys.readouterr().out)
    store = ControlStore(clients.dynamodb, coretable().control_table)
    for r in again["routes"]:
        assert r["mode"] == "put-if-absent"
        assert r["phase"] == store.phase(r["route"]).phase.value == "backfilled"

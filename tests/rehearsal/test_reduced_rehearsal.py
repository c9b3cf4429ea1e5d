"""The reduced rehearsal: the SAM stack built and deployed by `sam deploy` to a private
ministack, one route backfilled by the deployed state machine while live writes go on, and
the writes made after it replicated by the deployed replicator through the mapping the
backfill's last step enabled (`make rehearse` runs the README's whole order).

About 36-40 s on the 2-core development machine, so it runs in `make test`; marked
`rehearsal` (`pytest -m "not rehearsal"` leaves it out). Its first run also makes the
aws-sam-cli and ministack virtualenvs in .bench/ (about 2 minutes); without a package index
it is skipped."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from rehearse import flow
from rehearse.context import Options
from rehearse.session import rehearse
from rehearse.tools import ToolUnavailable
from tests.ministack_harness import MinistackUnavailable

pytestmark = pytest.mark.rehearsal


def test_deploy_one_route_and_a_handful_of_live_writes(tmp_path: Path) -> None:
    options = Options(
        servers=20, memberships=0, routes=("servers",), traffic_rate=5.0, after_backfill_s=2.0
    )
    console = Console(file=(tmp_path / "out.txt").open("w"), width=160)
    try:
        rehearsal, results = rehearse(options, tmp_path, console, flow.REDUCED)
    except (ToolUnavailable, MinistackUnavailable) as exc:
        pytest.skip(str(exc))
    failed = [r for r in results if not r.ok]
    assert not failed, (failed, (tmp_path / "commands.log").read_text()[-3000:])
    assert [r.action for r in results] == [s.action for s in flow.REDUCED]
    assert rehearsal.traffic.ops > rehearsal.writes_before_backfill_end > 0
    subjects = " ".join(a.subject for a in rehearsal.adaptations)
    assert "ServersStreamMapping" in subjects and "metric math" in subjects
    # the reverse mapping (on CoreTable's stream, CoreStreamArn) came up enabled too
    assert "ReverseStreamMapping created disabled" in subjects
    # ministack (and its Lambda workers, in its process group) is gone, and so is sam
    assert rehearsal.endpoint.startswith("http://127.0.0.1:")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{rehearsal.endpoint}/_ministack/health", timeout=2)
    assert _processes_naming(tmp_path) == []


def _processes_naming(workdir: Path) -> list[str]:
    """Processes whose command line names this rehearsal's work directory (sam's do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found

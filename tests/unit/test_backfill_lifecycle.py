"""The route lifecycle's transitions (pure) and the phase record they write."""

from __future__ import annotations

import pytest

from backfill.lifecycle import began, checkpointed_total, completed, missing_segments
from dualwrite.control import Phase, RoutePhase, SegmentState
from dualwrite.errors import ConfigError


def test_a_backfill_begins_once_and_a_resume_keeps_its_start() -> None:
    started = began(RoutePhase(), total=4, restart=False, now=100.0)
    assert started is not None and started.phase is Phase.BACKFILLING
    assert (started.backfill_started_at, started.total_segments) == (100.0, 4)
    assert started.backfilling_at is not None
    assert began(started, total=4, restart=False, now=200.0) is None
    again = began(started, total=4, restart=True, now=200.0)
    assert again is not None and again.backfill_started_at == 200.0
    assert began(RoutePhase(Phase.BACKFILLED), total=4, restart=True, now=1.0) is None


def test_completion_marks_backfilled_with_the_retention_verdict() -> None:
    started = began(RoutePhase(), total=2, restart=False, now=100.0)
    assert started is not None
    done = completed(started, total=2, problem=None, now=150.0, record=True)
    assert done is not None and done.backfilled and not done.needs_repair
    assert done.backfill_completed_at == 150.0 and done.repair_reason is None
    late = completed(started, total=2, problem="too long", now=9e9, record=True)
    assert late is not None and late.needs_repair and late.repair_reason == "too long"
    # a put-if-absent re-run of a BACKFILLED route keeps its phase and times
    rerun = completed(done, total=2, problem=None, now=300.0, record=True)
    assert rerun is not None and rerun.backfilled_at == done.backfilled_at
    assert rerun.rerun_completed_at == 300.0
    assert completed(done, total=2, problem=None, now=300.0, record=False) is None


def test_the_phase_record_keeps_the_shape_status_shows() -> None:
    assert RoutePhase().to_json() == {"phase": "pending"}
    started = began(RoutePhase(), total=3, restart=False, now=5.0)
    assert started is not None
    data = started.to_json()
    assert list(data) == [
        "phase",
        "backfill_started_at",
        "backfill_completed_at",
        "needs_repair",
        "repair_reason",
        "total_segments",
        "backfilling_at",
    ]
    assert data["backfill_completed_at"] is None and data["phase"] == "backfilling"
    assert RoutePhase.from_json(data) == started
    test_only = RoutePhase().entered(Phase.BACKFILLED, 1.0)
    assert list(test_only.to_json()) == ["phase", "backfilled_at"]


def test_segments_left_and_the_checkpointed_count() -> None:
    cps = [SegmentState("r", 0, 3, done=True), SegmentState("r", 2, 3), SegmentState("r", 1, 2)]
    assert missing_segments(cps, 3) == [1, 2]
    with pytest.raises(ConfigError, match="2 and 3"):
        checkpointed_total("r", cps, None)
    same = cps[:2]
    assert checkpointed_total("r", same, None) == 3
    with pytest.raises(ConfigError, match="--segments 3"):
        checkpointed_total("r", same, 4)
    assert checkpointed_total("r", [], 5) is None
    # a complete backfill keeps its count: a re-run with another one finds it complete
    complete = [SegmentState("r", i, 3, done=True) for i in range(3)]
    assert checkpointed_total("r", complete, 4) == 3

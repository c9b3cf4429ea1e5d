"""A rollback (or cutover) stopped after it began its switch of direction and before it
saved it leaves the switch under way (Direction.next_at): the changes it orders are held
for it, and only a re-run of that command finishes it. `replicate --until-caught-up` then
says so (exit 4) instead of waiting silently for good; a switch just begun, which a running
rollback is making, is waited for."""

from __future__ import annotations

import pytest

from dualwrite.errors import SafetyGateError
from dualwrite.reverse.direction import Direction, Flow
from stream_replicator.runner import UNFINISHED_SWITCH_S
from tests.functional.test_replicator_runner import Env, base, env, mark_backfilled

__all__ = ["base", "env"]  # the fixtures


def switching_back(env: Env, begun_s_ago: float) -> None:
    now = env.store.now()
    for route in ("servers", "memberships"):
        env.store.save_direction(
            route,
            Direction(
                direction=Flow.REVERSE,
                switched_at=now - 3600,
                overlap_s=1.0,
                old_drained=True,
                next_at=now - begun_s_ago,
            ),
            expected=env.store.direction(route),
        )


def test_until_caught_up_refuses_a_switch_stopped_midway(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    switching_back(env, begun_s_ago=UNFINISHED_SWITCH_S + 5)
    with pytest.raises(SafetyGateError, match=r"run `dualwrite rollback` again") as refused:
        env.runner(phase_interval=0.0).run(until_caught_up=True, duration=10.0)
    assert refused.value.exit_code == 4
    assert str(refused.value).startswith("route servers: the switch of direction begun at ")


def test_a_switch_just_begun_is_not_refused(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    switching_back(env, begun_s_ago=0.0)
    summary = env.runner(phase_interval=0.0).run(until_caught_up=True, duration=5.0)
    assert summary.failed == 0

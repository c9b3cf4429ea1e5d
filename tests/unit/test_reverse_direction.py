"""Directions and switches (DESIGN.md section 8): one direction applies at a time; the old one
applies everything made before T+O, the new one from T minus a margin once the old drained;
a switch back (rollback) the same way."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.reverse.direction import (
    DEFAULT_MARGIN_S,
    Direction,
    Flow,
    Side,
    SwitchPendingError,
    Verdict,
    decide,
    drain_complete,
    drained,
    overlap_seconds,
    switch,
)

T, OV = 10_000.0, 30.0
times = st.floats(min_value=0, max_value=50_000, allow_nan=False)


def test_before_any_switch_forward_applies_everything_and_the_target_stream_is_ignored() -> None:
    state = Direction()
    assert state.direction is Flow.FORWARD and state.applying is Flow.FORWARD
    for at in (None, 0.0, 1e9):
        assert decide(state, Side.SOURCE, at) is Verdict.APPLY
        assert decide(state, Side.TARGET, at) is Verdict.SKIP


def test_a_cutover_drains_forward_then_applies_reverse_from_t_minus_the_margin() -> None:
    state = switch(Direction(), Flow.REVERSE, T, OV)
    assert (state.direction, state.switched_at, state.overlap_s) == (Flow.REVERSE, T, OV)
    assert not state.old_drained and state.applying is Flow.FORWARD
    # forward keeps applying what was made before T+OV
    assert decide(state, Side.SOURCE, T - 100) is Verdict.APPLY
    assert decide(state, Side.SOURCE, T + OV - 0.001) is Verdict.APPLY
    # made after T+OV on an old table: not forward's; reverse's echo or a foreign write
    assert decide(state, Side.SOURCE, T + OV) is Verdict.CHECK_FOREIGN
    # reverse waits for the drain; before T - margin it is forward's, skipped
    assert decide(state, Side.TARGET, T) is Verdict.WAIT
    assert decide(state, Side.TARGET, T - DEFAULT_MARGIN_S) is Verdict.WAIT
    assert decide(state, Side.TARGET, T - DEFAULT_MARGIN_S - 0.001) is Verdict.SKIP
    assert not drain_complete(state, None)
    # the runner's clock may be ahead of the journal's by up to the margin, plus rounding
    assert not drain_complete(state, T + OV)
    assert not drain_complete(state, T + OV + DEFAULT_MARGIN_S + 0.999)
    assert drain_complete(state, T + OV + DEFAULT_MARGIN_S + 1)
    state = drained(state)
    assert state.applying is Flow.REVERSE
    assert decide(state, Side.TARGET, T) is Verdict.APPLY
    assert decide(state, Side.TARGET, None) is Verdict.APPLY
    # a redelivered forward record must not overwrite what reverse wrote since
    assert decide(state, Side.SOURCE, T - 100) is Verdict.SKIP
    assert decide(state, Side.SOURCE, T + 3 * OV) is Verdict.CHECK_FOREIGN


def test_a_rollback_drains_reverse_then_resumes_forward() -> None:
    cut = drained(switch(Direction(), Flow.REVERSE, T, OV))
    t2, o2 = T + 7 * 86400, 60.0
    back = switch(cut, Flow.FORWARD, t2, o2)
    assert (back.direction, back.switched_at, back.applying) == (Flow.FORWARD, t2, Flow.REVERSE)
    assert decide(back, Side.TARGET, t2 + o2 - 1) is Verdict.APPLY  # reverse drains
    assert decide(back, Side.TARGET, t2 + o2) is Verdict.CHECK_FOREIGN  # a stray new-table write
    assert decide(back, Side.SOURCE, t2) is Verdict.WAIT  # forward waits
    assert decide(back, Side.SOURCE, t2 - DEFAULT_MARGIN_S - 1) is Verdict.SKIP
    back = drained(back)
    assert decide(back, Side.SOURCE, t2) is Verdict.APPLY
    assert decide(back, Side.TARGET, t2 - 1) is Verdict.SKIP


def test_a_switch_back_being_made_holds_the_old_tables_writes_from_its_t_until_it_is_saved() -> (
    None
):
    """A rollback journaled T2 and is re-pointing the functions: the application's writes to
    the old tables from T2 minus the margin wait for forward; earlier ones are still checked
    for foreign writes, and reverse goes on applying. The switch back clears it."""
    from dataclasses import replace

    t2 = T + 3600
    making = replace(drained(switch(Direction(), Flow.REVERSE, T, OV)), next_at=t2)
    assert decide(making, Side.SOURCE, t2) is Verdict.WAIT
    assert decide(making, Side.SOURCE, t2 - DEFAULT_MARGIN_S) is Verdict.WAIT
    assert decide(making, Side.SOURCE, t2 - DEFAULT_MARGIN_S - 0.001) is Verdict.CHECK_FOREIGN
    assert decide(making, Side.SOURCE, T - 100) is Verdict.SKIP  # forward's drain, done
    assert decide(making, Side.TARGET, t2 + 10) is Verdict.APPLY
    assert Direction.from_json(making.to_json()) == making
    back = switch(making, Flow.FORWARD, t2, OV)
    assert back.next_at is None and decide(back, Side.SOURCE, t2) is Verdict.WAIT


def test_switches_are_idempotent_and_wait_for_the_previous_drain() -> None:
    cut = switch(Direction(), Flow.REVERSE, T, OV)
    assert switch(cut, Flow.REVERSE, T + 50, OV) == cut  # a cutover run again
    with pytest.raises(SwitchPendingError, match="still draining"):
        switch(cut, Flow.FORWARD, T + 5, OV)
    assert switch(Direction(), Flow.FORWARD, T, OV) == Direction()


def test_the_state_round_trips_through_json() -> None:
    state = switch(Direction(), Flow.REVERSE, T, OV, margin_s=2.5)
    assert Direction.from_json(state.to_json()) == state
    assert Direction.from_json({}) == Direction()


def test_overlap_defaults_to_the_longest_function_timeout() -> None:
    assert overlap_seconds(None, [3, 900, 30]) == 900
    assert overlap_seconds(12, [900]) == 12
    assert overlap_seconds(None, []) == 3


@given(times, st.floats(min_value=0, max_value=1000), times, st.booleans())
def test_never_both_directions_apply_at_one_moment(
    t: float, o: float, at: float, old_drained: bool
) -> None:
    for to in (Flow.REVERSE, Flow.FORWARD):
        start = Direction(direction=Flow.FORWARD if to is Flow.REVERSE else Flow.REVERSE)
        state = switch(start, to, t, o)
        if old_drained:
            state = drained(state)
        verdicts = {side: decide(state, side, at) for side in Side}
        applying = [side for side, v in verdicts.items() if v is Verdict.APPLY]
        # at most one side applies at a time, and it is the one `applying` names
        assert len(applying) <= 1
        if applying:
            assert (Flow.FORWARD if applying[0] is Side.SOURCE else Flow.REVERSE) is state.applying
        # every change is owned: applied by one direction, or checked, or an echo window
        if at >= t + o and not old_drained:
            assert verdicts[Side.SOURCE if to is Flow.REVERSE else Side.TARGET] is (
                Verdict.CHECK_FOREIGN
            )


@given(st.lists(times, min_size=1, max_size=30), times, st.floats(min_value=0, max_value=600))
def test_every_change_made_is_applied_by_exactly_one_direction_or_checked(
    made: list[float], t: float, o: float
) -> None:
    # the old side's changes before T+OV are applied by the drain; the new side's changes from
    # T - margin after it; nothing else of the live side is dropped
    state = switch(Direction(), Flow.REVERSE, t, o)
    for at in made:
        old = decide(state, Side.SOURCE, at)
        assert old in (Verdict.APPLY, Verdict.CHECK_FOREIGN)
        assert (old is Verdict.APPLY) == (at < t + o)
    after = drained(state)
    for at in made:
        new = decide(after, Side.TARGET, at)
        assert (new is Verdict.APPLY) == (at >= t - DEFAULT_MARGIN_S)
        assert decide(after, Side.SOURCE, at) in (Verdict.SKIP, Verdict.CHECK_FOREIGN)


def test_a_switch_is_not_taken_for_another_one_whose_switch_back_is_being_made() -> None:
    """REVERSE since T with a rollback's switch back under way (next_at): a later cutover's
    switch to REVERSE must not pass for done (the rollback's writes would wait for good)."""
    rolling_back = replace(switch(Direction(), Flow.REVERSE, T, OV), next_at=T + 100)
    with pytest.raises(SwitchPendingError):
        switch(rolling_back, Flow.REVERSE, T + 900, OV)
    assert switch(rolling_back, Flow.REVERSE, T, OV) is rolling_back  # the same switch: a re-run

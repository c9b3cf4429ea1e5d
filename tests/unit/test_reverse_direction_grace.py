"""The drain grace of a switch (reverse-wiring decision 4): recorded with the direction, kept
by a switch that does not change it, and the Lambda's drain by the clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dualwrite.reverse.direction import (
    DEFAULT_MARGIN_S,
    Direction,
    Flow,
    drain_complete,
    drained,
    drained_by_time,
    switch,
)

T, OV = 10_000.0, 30.0


def test_the_grace_is_journaled_and_round_trips() -> None:
    state = switch(Direction(), Flow.REVERSE, T, OV, drain_grace_s=60.0)
    assert state.drain_grace_s == 60.0
    assert Direction.from_json(state.to_json()) == state
    assert (
        Direction.from_json(
            {k: v for k, v in state.to_json().items() if k != "drain_grace_s"}
        ).drain_grace_s
        == 0.0
    )
    # a rollback without its own grace keeps the cutover's; with one, takes it
    back = switch(drained(state), Flow.FORWARD, T + 100, OV)
    assert back.drain_grace_s == 60.0
    assert switch(drained(state), Flow.FORWARD, T + 100, OV, drain_grace_s=5).drain_grace_s == 5.0
    assert switch(state, Flow.REVERSE, T + 1, OV, drain_grace_s=1.0) == state  # idempotent


def test_the_lambda_counts_a_drain_done_by_the_clock_after_the_grace() -> None:
    state = switch(Direction(), Flow.REVERSE, T, OV, drain_grace_s=60.0)
    slack = DEFAULT_MARGIN_S + 1.0  # clocks differ by up to the margin; rounding
    assert not drained_by_time(state, T + OV + 60.0)
    assert not drained_by_time(state, T + OV + 60.0 + slack - 0.001)
    assert drained_by_time(state, T + OV + 60.0 + slack)
    assert drained_by_time(drained(state), T)  # already drained
    assert drained_by_time(Direction(), 0.0)  # never switched: nothing to drain


@given(
    st.floats(min_value=0, max_value=1e5),
    st.floats(min_value=0, max_value=600),
    st.floats(min_value=0, max_value=3600),
)
def test_the_clock_never_counts_a_drain_before_the_exact_rule_could(
    now: float, overlap: float, grace: float
) -> None:
    state = switch(Direction(), Flow.REVERSE, T, overlap, drain_grace_s=grace)
    if drained_by_time(state, now):
        assert drain_complete(state, now)

"""Which direction applies a stream record now (DESIGN.md section 8). Pure: times are given.

A route is `forward` (source stream -> mapping -> target) until cutover, `reverse` (target
stream -> inverse mapping -> source) from cutover, `forward` again after a rollback. A switch
journals its time T and the overlap O. The old direction keeps applying every change made
before T+O (an invocation that began before the switch still writes with the old
environment); once it has (`drained`), the new direction applies from T minus a margin, by
ApproximateCreationDateTime. One direction applies at a time, so nothing bounces; the
margin only re-applies echoes, which change nothing.

A record in the old direction's stream made at or after T+O was written to the side that is
no longer live: for the source stream after cutover that is either reverse replication's own
write (an echo) or a foreign write (foreign.py tells them apart).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from dualwrite.jsondoc import JsonObject

#: ApproximateCreationDateTime is rounded down to the second, and the journal's clock is not
#: DynamoDB's: the new direction starts this much before T (re-applying echoes is harmless)
DEFAULT_MARGIN_S = 5.0
#: Lambda's default function Timeout, the overlap when no function is re-pointed
DEFAULT_OVERLAP_S = 3.0


class Flow(StrEnum):
    FORWARD = "forward"
    REVERSE = "reverse"


class Side(StrEnum):
    """Which table's stream a record comes from."""

    SOURCE = "source"
    TARGET = "target"


class Verdict(StrEnum):
    APPLY = "apply"
    #: the new direction's record waits (report it failed: the stream keeps it) until the
    #: old direction has drained
    WAIT = "wait"
    #: the other direction owns it (or it was applied already): acknowledge, write nothing
    SKIP = "skip"
    #: written to the side that is not live after the overlap: write nothing, check whether
    #: it is foreign
    CHECK_FOREIGN = "check_foreign"


def flow_of(side: Side) -> Flow:
    return Flow.FORWARD if side is Side.SOURCE else Flow.REVERSE


class SwitchPendingError(ValueError):
    """A switch was asked for while the previous one's old direction is still draining."""


def overlap_seconds(configured: float | None, function_timeouts: Iterable[float]) -> float:
    """`cutover.overlap_seconds`, else the longest Timeout of the re-pointed functions."""
    if configured is not None:
        return float(configured)
    return max((float(t) for t in function_timeouts), default=DEFAULT_OVERLAP_S)


@dataclass(frozen=True)
class Direction:
    """A route's direction: the one live since the latest switch, and that switch."""

    direction: Flow = Flow.FORWARD
    #: T of the latest switch (epoch seconds); None: never switched (forward from the start)
    switched_at: float | None = None
    overlap_s: float = 0.0
    #: the old direction has applied every change made before T+O
    old_drained: bool = True
    margin_s: float = DEFAULT_MARGIN_S
    #: the replication lag the switch allowed (cutover.max_lag_seconds): whoever cannot see
    #: the old direction's shards (Lambda) counts it drained this long after T+O
    drain_grace_s: float = 0.0
    #: T of the next switch, being made and not saved yet: a rollback journaled it and is
    #: re-pointing the functions, or a cutover is re-pointing them and running its checks.
    #: The old direction's records from T minus the margin wait for it, instead of being
    #: taken for foreign writes (the application's own writes, once re-pointed back) or
    #: acknowledged as the old direction's (a second cutover's new-table writes, while its
    #: checks run). The switch clears it.
    next_at: float | None = None

    @property
    def drain_until(self) -> float | None:
        """T+O: the old direction applies every change made before it."""
        if self.switched_at is None:
            return None
        return self.switched_at + self.overlap_s

    @property
    def starts_at(self) -> float | None:
        """T minus the margin: the new direction applies changes made from then."""
        if self.switched_at is None:
            return None
        return self.switched_at - self.margin_s

    @property
    def applying(self) -> Flow:
        """The direction that applies changes right now (the old one while it drains)."""
        if self.old_drained:
            return self.direction
        return Flow.REVERSE if self.direction is Flow.FORWARD else Flow.FORWARD

    def to_json(self) -> JsonObject:
        return {
            "direction": self.direction.value,
            "switched_at": self.switched_at,
            "overlap_s": self.overlap_s,
            "old_drained": self.old_drained,
            "margin_s": self.margin_s,
            "drain_grace_s": self.drain_grace_s,
            "next_at": self.next_at,
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> Direction:
        at = data.get("switched_at")
        return cls(
            direction=Flow(data.get("direction", Flow.FORWARD.value)),
            switched_at=float(at) if at is not None else None,
            overlap_s=float(data.get("overlap_s", 0.0)),
            old_drained=bool(data.get("old_drained", True)),
            margin_s=float(data.get("margin_s", DEFAULT_MARGIN_S)),
            drain_grace_s=float(data.get("drain_grace_s", 0.0)),
            next_at=float(data["next_at"]) if data.get("next_at") is not None else None,
        )


def switch(
    state: Direction,
    to: Flow,
    at: float,
    overlap_s: float,
    margin_s: float | None = None,
    drain_grace_s: float | None = None,
) -> Direction:
    """The state after a switch to `to` journaled at T=`at`. Running the same switch again
    (a killed cutover or rollback run again) gives the same state. A switch while the
    previous one still drains raises SwitchPendingError: the caller waits for the drain
    (bounded by O plus the replication lag), so no change of either side is left behind."""
    if state.direction is to:
        if state.next_at is not None and state.switched_at not in (None, float(at)):
            # another switch's state, with the switch back (a rollback) still being made:
            # taking it for this one would leave that rollback's writes waiting for good
            raise SwitchPendingError(
                f"the switch back from {state.direction} being made since {state.next_at} is "
                f"not finished; finish it (dualwrite rollback) before switching to {to} again"
            )
        return state  # already switched: idempotent
    if not state.old_drained:
        raise SwitchPendingError(
            f"the switch to {state.direction} at {state.switched_at} is still draining the "
            f"{state.applying} direction; wait for it before switching to {to}"
        )
    return Direction(
        direction=to,
        switched_at=float(at),
        overlap_s=float(overlap_s),
        old_drained=False,
        margin_s=state.margin_s if margin_s is None else float(margin_s),
        drain_grace_s=state.drain_grace_s if drain_grace_s is None else float(drain_grace_s),
    )


def drain_complete(state: Direction, caught_up_at: float | None) -> bool:
    """Whether the old direction has applied every change made before T+O, given the time
    at which its stream was last seen read to the end with every record applied (None:
    not yet). A record made before T+O is in the stream by then, judged on a clock (the
    runner's) that is not the journal's nor DynamoDB's: they may differ by up to the
    margin, as where the new direction starts, plus a second of rounding."""
    until = state.drain_until
    if until is None or state.old_drained:
        return True
    return caught_up_at is not None and caught_up_at >= until + clock_slack(state)


def clock_slack(state: Direction) -> float:
    """Clocks differ by up to the margin; ApproximateCreationDateTime is rounded down."""
    return state.margin_s + 1.0


def drained_by_time(state: Direction, now: float) -> bool:
    """The drain as whoever cannot see the old direction's shards judges it (Lambda): the
    wall clock is past T+O plus the lag the switch allowed, plus the clocks' slack."""
    if state.old_drained:
        return True
    ends = drain_ends_by_time(state)
    return ends is None or now >= ends


def drain_ends_by_time(state: Direction) -> float | None:
    """When drained_by_time counts the drain done: T+O, the grace, the clocks' slack."""
    until = state.drain_until
    return None if until is None else until + state.drain_grace_s + clock_slack(state)


def drained(state: Direction) -> Direction:
    """The state once the old direction has drained (journal it: the new one then applies)."""
    return replace(state, old_drained=True)


def decide(state: Direction, side: Side, created_at: float | None) -> Verdict:
    """What to do now with a record of `side`'s stream made at `created_at`
    (ApproximateCreationDateTime; None when unknown, as outside AWS it may be)."""
    flow = flow_of(side)
    if state.switched_at is None:
        return Verdict.APPLY if flow is Flow.FORWARD else Verdict.SKIP
    if flow is state.direction:  # the new direction
        start = state.starts_at
        assert start is not None
        if created_at is not None and created_at < start:
            return Verdict.SKIP  # the old direction's (or an echo of its writes)
        return Verdict.APPLY if state.old_drained else Verdict.WAIT
    # the old direction
    until = state.drain_until
    assert until is not None
    if created_at is None or created_at < until:
        # applied by the drain; once drained, a redelivery must not overwrite what the new
        # direction has written since
        return Verdict.SKIP if state.old_drained else Verdict.APPLY
    if state.next_at is not None and created_at >= state.next_at - state.margin_s:
        return Verdict.WAIT  # the switch being made applies it
    return Verdict.CHECK_FOREIGN

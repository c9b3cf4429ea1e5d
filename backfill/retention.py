"""The stream's 24 h retention guard. Pure: times come in as epoch seconds.

The replicator starts a route from the stream's trim horizon when its backfill completes. A
change made after the backfill read an item is safe only while the stream still holds it, so
a backfill that ran longer than the retention (measured from the earliest start of the
route's backfill: the phase's backfill_started_at or the oldest segment checkpoint), or that
began before the stream existed, may have lost changes: the route then needs a repair pass
(`dualwrite reconcile --repair`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from dualwrite.control.phases import RoutePhase
from dualwrite.control.segments import SegmentState

STREAM_RETENTION_S = 24 * 3600.0
#: clocks of this machine and of AWS may disagree a little
CLOCK_SLACK_S = 300.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def stream_created_at(label: str | None) -> float | None:
    """A stream label (DescribeTable LatestStreamLabel) is its creation time, in UTC."""
    if not label:
        return None
    try:
        parsed = datetime.fromisoformat(label.rstrip("Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def backfill_started_at(phase: RoutePhase, checkpoints: Iterable[SegmentState]) -> float | None:
    """The earliest start of the route's backfill on record."""
    starts = [phase.backfill_started_at] if phase.backfill_started_at else []
    starts += [cp.started_at for cp in checkpoints if cp.started_at]
    return min(starts) if starts else None


def retention_problem(
    started_at: float | None,
    now: float,
    stream_created: float | None,
    retention_s: float = STREAM_RETENTION_S,
) -> str | None:
    """Why replication cannot be trusted to cover this backfill, or None."""
    if started_at is None:
        return None
    if stream_created is not None and stream_created > started_at + CLOCK_SLACK_S:
        return (
            f"the source's stream was created at {_iso(stream_created)}, after the backfill "
            f"began at {_iso(started_at)}: changes made in between are in no stream"
        )
    elapsed = now - started_at
    if elapsed > retention_s:
        return (
            f"the backfill ran {elapsed / 3600:.1f} h (since {_iso(started_at)}), longer than "
            f"the stream's {retention_s / 3600:.0f} h retention: changes made early in the "
            "backfill may have been trimmed before replication starts"
        )
    return None

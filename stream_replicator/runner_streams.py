"""Which streams the local runner reads, and the drains it owes (DESIGN.md section 8).

It reads the source stream of every backfilled route and, once a route has ever switched
(Direction.switched_at set), its target table's stream (a target shared by two routes, such
as CoreTable, is read once: checkpoints are per stream ARN and shard). Phases and directions
are read again every `phase_interval`, so a backfill or a switch made while it runs is picked
up without a restart.

Drains are marked exactly (reverse-wiring decision 4): a switch's old direction has drained
once every shard of its stream was read to its end, with everything applied, at a time at or
after T+O plus a second (`drain_complete`). The old direction of a cutover is the route's
source stream; of a rollback, the route's target stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dualwrite.config import Migration, Route
from dualwrite.control import ControlStore, iso
from dualwrite.errors import AwsError, ConfigError, DualwriteError, NotFoundError
from dualwrite.reverse.direction import Direction, Flow, Side, drain_complete
from stream_replicator.apply import Replicator
from stream_replicator.checkpointer import Checkpointer
from stream_replicator.cursor import CursorRules, ShardCursor
from stream_replicator.events import ready_shards
from stream_replicator.shard_reader import ShardReader, discover, discover_target, passing


def target_label(table: str) -> str:
    """The name a target table's stream goes by (its checkpoints' "route")."""
    return f"target:{table}"


@dataclass
class RunStream:
    label: str
    side: Side
    table: str
    reader: ShardReader
    cursors: dict[str, ShardCursor] = field(default_factory=dict)

    def caught_up_at(self, rules: CursorRules) -> float | None:
        """When every shard was last seen read to its end with everything applied (a closed
        shard read to its end counts whenever); None: some shard is not there yet."""
        times: list[float] = []
        for cursor in self.cursors.values():
            if cursor.done:
                continue
            if cursor.stuck or not cursor.idle(rules) or cursor.caught_up_at is None:
                return None
            times.append(cursor.caught_up_at)
        return min(times, default=float("inf"))


@dataclass
class StreamSet:
    migration: Migration
    store: ControlStore
    replicator: Replicator
    streams_client: Callable[[], Any]
    checkpointer: Checkpointer
    rules: CursorRules
    phase_interval: float
    notify: Callable[[str], None]
    streams: dict[str, RunStream] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    #: route -> its phase, for routes not backfilled yet
    held: dict[str, str] = field(default_factory=dict)
    #: route -> its direction as last read
    directions: dict[str, Direction] = field(default_factory=dict)
    #: routes whose drain this run marked
    drained: list[str] = field(default_factory=list)
    #: "label:shard" of shards whose records after the checkpoint are gone (the run's tally)
    trimmed: list[str] = field(default_factory=list)
    _unreadable: set[str] = field(default_factory=set)
    _lost_checked: set[str] = field(default_factory=set)

    def discover(self) -> None:
        readers = discover(self.migration, self.replicator.dynamodb, self.streams_client())
        for route in self.migration.routes:
            self.streams[route.name] = RunStream(
                route.name, Side.SOURCE, route.source, readers[route.name]
            )

    # --- phases and directions ----------------------------------------------------------
    def check(self, *, announce_waiting: bool) -> None:
        self.check_phases(announce_waiting=announce_waiting)
        self.check_directions()

    def check_phases(self, *, announce_waiting: bool) -> None:
        for route in self.migration.routes:
            if route.name in self.active:
                continue
            try:
                phase = self.store.phase(route.name).phase.value
            except NotFoundError:
                raise ConfigError(
                    f"control table {self.store.table} does not exist; run `dualwrite prepare`"
                ) from None
            if phase == "backfilled":
                if route.name in self.held:
                    self.notify(f"route {route.name} is backfilled now: replicating it")
                self.held.pop(route.name, None)
                self.activate(route.name)
                continue
            if route.name not in self.held:
                self.held[route.name] = phase
                if announce_waiting:
                    self.notify(
                        f"route {route.name} is not backfilled yet (phase {phase}): its changes "
                        f"stay in the stream; waiting for its backfill (checking every "
                        f"{self.phase_interval:g}s)"
                    )
                else:
                    self.notify(
                        f"route {route.name} is not backfilled yet (phase {phase}): nothing to "
                        f"do for it yet, its changes stay in the stream; run `dualwrite "
                        f"backfill --route {route.name}` first"
                    )

    def check_directions(self) -> None:
        """Read every route's direction again; read the target stream of a switched route."""
        for route in self.migration.routes:
            state = self.replicator.directions.read(route.name)
            before = self.directions.get(route.name)
            self.directions[route.name] = state
            if state.switched_at is None:
                continue
            if before is None or before.switched_at != state.switched_at:
                self.notify(
                    f"route {route.name}: direction {state.direction.value} since "
                    f"{iso(state.switched_at)}"
                    + ("" if state.old_drained else f" ({state.applying.value} drains first)")
                )
            self._read_target(route)
            if state.old_drained and state.direction is Flow.FORWARD:
                # after a rollback's drain: the foreign writes go forward (once per process)
                self.replicator.direction(self.replicator.context(route), lambda: True)

    def _read_target(self, route: Route) -> None:
        label = target_label(route.target)
        if label in self.active:
            return
        reader, why = discover_target(self.replicator.dynamodb, self.streams_client(), route.target)
        if reader is None:  # said once; looked for again at each check (it may be enabled)
            if route.name not in self._unreadable:
                self._unreadable.add(route.name)
                self.notify(f"route {route.name}: cannot replicate in reverse: {why}")
            return
        self.streams[label] = RunStream(label, Side.TARGET, route.target, reader)
        self.activate(label)

    def activate(self, label: str) -> None:
        self.active.add(label)
        self.refresh(self.streams[label])

    # --- drains -------------------------------------------------------------------------
    def old_stream(self, route: Route, state: Direction) -> RunStream | None:
        """The stream of the direction that still drains, when this run reads it."""
        if state.old_drained or state.switched_at is None:
            return None
        label = route.name if state.applying is Flow.FORWARD else target_label(route.target)
        return self.streams[label] if label in self.active else None

    def drain_pending(self) -> bool:
        """Whether a switch still owes a drain this run can see (so it is not caught up)."""
        return any(
            self.old_stream(r, self.directions[r.name]) is not None
            for r in self.migration.routes
            if r.name in self.directions
        )

    def settle_drains(self) -> None:
        """Mark every drain that is complete (the stream's shards listed again first: a
        split may just have added one)."""
        for route in self.migration.routes:
            state = self.directions.get(route.name)
            if state is None:
                continue
            stream = self.old_stream(route, state)
            if stream is None or not drain_complete(state, stream.caught_up_at(self.rules)):
                continue
            if not self.refresh(stream) or not drain_complete(
                state, stream.caught_up_at(self.rules)
            ):
                continue
            try:
                now = self.replicator.directions.mark_drained(route.name, state)
            except DualwriteError as exc:
                self.notify(f"route {route.name}: could not record the drain ({exc})")
                continue
            self.directions[route.name] = now
            if now.old_drained and now.switched_at == state.switched_at:
                self.drained.append(route.name)
                self.notify(
                    f"route {route.name}: the {state.applying.value} direction has drained "
                    f"(every change made before T+O, {iso(state.drain_until or 0.0)}, applied); "
                    f"{now.direction.value} applies now"
                )
                if now.direction is Flow.FORWARD:
                    self.replicator.direction(self.replicator.context(route), lambda: True)

    # --- shards -------------------------------------------------------------------------
    def refresh_active(self) -> None:
        for label in sorted(self.active):
            self.refresh(self.streams[label])

    def refresh(self, stream: RunStream) -> bool:
        """List the stream's shards again (new ones get cursors); False when the listing
        failed for a passing reason (the drain waits for the next one)."""
        listed = set()
        try:
            shards = stream.reader.shards()
        except AwsError as exc:
            if not passing(exc):
                raise
            # throttled or a 5xx (botocore's retries spent): the shards known are read on,
            # and the listing is asked for again at the next refresh
            self.notify(f"{stream.label}: listing the stream's shards failed ({exc}); retried")
            return False
        for shard in shards:
            listed.add(shard.shard_id)
            cursor = stream.cursors.get(shard.shard_id)
            if cursor is not None:
                cursor.shard = shard
                continue
            stream.cursors[shard.shard_id] = self.checkpointer.resume(
                stream.label, stream.reader.stream_arn, shard
            )
        if stream.label not in self._lost_checked:
            self._lost_checked.add(stream.label)
            self._report_lost(stream, listed)
        return True

    def _report_lost(self, stream: RunStream, listed: set[str]) -> None:
        """A shard checkpointed but not read to its end that the stream no longer lists (the
        runner was stopped for more than the stream's 24 h): the records after its
        checkpoint are gone. Said as loudly as a trimmed checkpoint, not passed over."""
        for saved in self.store.shards(stream.reader.stream_arn):
            if saved.done or saved.shard_id in listed:
                continue
            self.trimmed.append(f"{stream.label}:{saved.shard_id}")
            self.notify(
                f"route {stream.label}: shard {saved.shard_id}, checkpointed but not read to "
                "its end, is no longer in the stream (its records older than 24 h are gone). "
                "Run `dualwrite reconcile --repair` for this route"
            )
            # said once: the checkpoint is closed (nothing of the shard is left to read)
            self.store.save_shard(replace(saved, done=True))

    def stuck(self) -> bool:
        return any(c.stuck for label in self.active for c in self.streams[label].cursors.values())

    def unreached(self) -> bool:
        """Whether a shard is still to read that ready() leaves out: a child whose parent is
        not read to its end (a split the last refresh found), unless it waits behind a
        stuck shard (never read in this run)."""
        ready = {id(c) for c in self.ready()}
        for label in sorted(self.active):
            cursors = list(self.streams[label].cursors.values())
            behind = {c.shard_id for c in cursors if c.stuck}
            grown = True
            while grown:  # the stuck shards' descendants wait with them
                more = {c.shard_id for c in cursors if c.shard.parent_id in behind} - behind
                behind |= more
                grown = bool(more)
            if any(not c.done and id(c) not in ready and c.shard_id not in behind for c in cursors):
                return True
        return False

    def ready(self) -> list[ShardCursor]:
        out: list[ShardCursor] = []
        for label in sorted(self.active):
            cursors = self.streams[label].cursors
            done = [sid for sid, c in cursors.items() if c.done]
            for shard in ready_shards([c.shard for c in cursors.values()], done):
                cursor = cursors[shard.shard_id]
                if not cursor.stuck:
                    out.append(cursor)
        return out

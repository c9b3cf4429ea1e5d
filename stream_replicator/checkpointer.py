"""The local runner's shard checkpoints in the control table (ControlStore's ShardCheckpoint):
read once when a shard is first seen, saved when a cursor's transition asks for it."""

from __future__ import annotations

from dataclasses import dataclass

from dualwrite.control import ControlStore
from stream_replicator.cursor import Now, ShardCursor
from stream_replicator.events import Shard


@dataclass(frozen=True)
class Checkpointer:
    store: ControlStore

    def resume(self, route: str, stream_arn: str, shard: Shard) -> ShardCursor:
        """A cursor for the shard, just after its checkpoint (at its start without one)."""
        saved = self.store.shard(stream_arn, shard.shard_id)
        return ShardCursor.resume(route, stream_arn, shard, saved)

    def save(self, cursor: ShardCursor, now: Now) -> None:
        self.store.save_shard(cursor.checkpoint())
        cursor.saved(now)

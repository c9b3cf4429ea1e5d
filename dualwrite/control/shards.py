"""Replication checkpoints: STREAM#<stream arn> / SHARD#<shard id>."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.control.table import ControlTable
from dualwrite.jsondoc import JsonObject


@dataclass(frozen=True)
class ShardCheckpoint:
    """How far the replicator got in one shard. lag_ms: of the newest record applied, 0 once
    the shard had nothing more to read; caught_up_at: when it last found nothing more (epoch s).
    """

    stream_arn: str
    shard_id: str
    route: str = ""
    parent_shard_id: str | None = None
    sequence_number: str | None = None
    done: bool = False
    records: int = 0
    lag_ms: int | None = None
    caught_up_at: float | None = None

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "stream_arn": self.stream_arn,
            "shard_id": self.shard_id,
            "parent_shard_id": self.parent_shard_id,
            "sequence_number": self.sequence_number,
            "done": self.done,
            "records": self.records,
            "lag_ms": self.lag_ms,
            "caught_up_at": self.caught_up_at,
        }

    @classmethod
    def from_json(cls, stream_arn: str, shard_id: str, data: Mapping[str, Any]) -> ShardCheckpoint:
        lag = data.get("lag_ms")
        caught = data.get("caught_up_at")
        return cls(
            stream_arn=str(data.get("stream_arn") or stream_arn),
            shard_id=str(data.get("shard_id") or shard_id),
            route=str(data.get("route") or ""),
            parent_shard_id=data.get("parent_shard_id") or None,
            sequence_number=data.get("sequence_number") or None,
            done=bool(data.get("done")),
            records=int(data.get("records") or 0),
            lag_ms=None if lag is None else int(lag),
            caught_up_at=None if caught is None else float(caught),
        )


class ShardRecords(ControlTable):
    def shard(self, stream_arn: str, shard_id: str) -> ShardCheckpoint | None:
        rec = self.get(f"STREAM#{stream_arn}", f"SHARD#{shard_id}")
        return ShardCheckpoint.from_json(stream_arn, shard_id, rec.data) if rec else None

    def save_shard(self, checkpoint: ShardCheckpoint) -> None:
        self.put(
            f"STREAM#{checkpoint.stream_arn}", f"SHARD#{checkpoint.shard_id}", checkpoint.to_json()
        )

    def shards(self, stream_arn: str) -> list[ShardCheckpoint]:
        return [
            ShardCheckpoint.from_json(stream_arn, rec.sk.removeprefix("SHARD#"), rec.data)
            for rec in self.query(f"STREAM#{stream_arn}", "SHARD#")
        ]

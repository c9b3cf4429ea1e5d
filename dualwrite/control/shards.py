"""Replication checkpoints: STREAM#<stream arn> / SHARD#<shard id>."""

from __future__ import annotations

from typing import Any

from dualwrite.control.table import ControlTable, Record


class ShardRecords(ControlTable):
    def shard(self, stream_arn: str, shard_id: str) -> dict[str, Any] | None:
        rec = self.get(f"STREAM#{stream_arn}", f"SHARD#{shard_id}")
        return rec.data if rec else None

    def save_shard(self, stream_arn: str, shard_id: str, data: dict[str, Any]) -> None:
        self.put(f"STREAM#{stream_arn}", f"SHARD#{shard_id}", data)

    def shards(self, stream_arn: str) -> list[Record]:
        return list(self.query(f"STREAM#{stream_arn}", "SHARD#"))

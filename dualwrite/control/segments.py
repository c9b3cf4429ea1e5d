"""Backfill checkpoints: ROUTE#<route> / SEGMENT#<total>#<segment>.

One scan segment's saved state is the JSON object: route, segment, total, last_key (the
LastEvaluatedKey after the last page whose writes were acknowledged, JSON-safe as in Lambda
events; null at the start), done, items_read, items_written, quarantined (cumulative over
every run of this segment), started_at and updated_at (epoch seconds), and carry_group: the
group (userId) of the last items checkpointed, whose derived item is written only when its
group ends, so a resumed segment derives it again (by Query) instead of losing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dualwrite.control.table import ControlTable, Record
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import AttributeValue, Key, from_lambda_json, item_from_lambda, to_lambda_json


@dataclass(frozen=True)
class SegmentState:
    route: str
    segment: int
    total: int
    last_key: Key | None = None
    done: bool = False
    items_read: int = 0
    items_written: int = 0
    quarantined: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0
    carry_group: AttributeValue | None = None

    @property
    def resumed(self) -> bool:
        """Whether a run starting from this state does not start the segment from scratch."""
        return self.done or self.last_key is not None

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "segment": self.segment,
            "total": self.total,
            "last_key": to_lambda_json(self.last_key),
            "done": self.done,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "quarantined": self.quarantined,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "carry_group": to_lambda_json(self.carry_group),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SegmentState:
        last_key = data.get("last_key")
        carry = data.get("carry_group")
        return cls(
            route=str(data["route"]),
            segment=int(data["segment"]),
            total=int(data["total"]),
            last_key=item_from_lambda(last_key) if last_key else None,
            done=bool(data.get("done", False)),
            items_read=int(data.get("items_read", 0)),
            items_written=int(data.get("items_written", 0)),
            quarantined=int(data.get("quarantined", 0)),
            started_at=float(data.get("started_at", 0.0) or 0.0),
            updated_at=float(data.get("updated_at", 0.0) or 0.0),
            carry_group=from_lambda_json(carry) if carry else None,
        )

    def at(self, now: float) -> SegmentState:
        return replace(self, updated_at=now)


class SegmentRecords(ControlTable):
    @staticmethod
    def segment_sk(segment: int, total: int) -> str:
        return f"SEGMENT#{total:05d}#{segment:05d}"

    def segment(self, route: str, segment: int, total: int) -> SegmentState | None:
        rec = self.get(f"ROUTE#{route}", self.segment_sk(segment, total))
        return SegmentState.from_json(rec.data) if rec else None

    def save_segment(self, state: SegmentState) -> None:
        self.put(
            f"ROUTE#{state.route}", self.segment_sk(state.segment, state.total), state.to_json()
        )

    def segments(self, route: str) -> list[SegmentState]:
        return [SegmentState.from_json(rec.data) for rec in self._segment_records(route)]

    def _segment_records(self, route: str) -> list[Record]:
        return list(self.query(f"ROUTE#{route}", "SEGMENT#"))

    def clear_segments(self, route: str) -> int:
        n = 0
        for rec in self._segment_records(route):
            self.delete(rec.pk, rec.sk)
            n += 1
        return n

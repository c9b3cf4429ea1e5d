"""Backfill checkpoints: ROUTE#<route> / SEGMENT#<total>#<segment>."""

from __future__ import annotations

from typing import Any

from dualwrite.control.table import ControlTable, Record


class SegmentRecords(ControlTable):
    @staticmethod
    def segment_sk(segment: int, total: int) -> str:
        return f"SEGMENT#{total:05d}#{segment:05d}"

    def segment(self, route: str, segment: int, total: int) -> dict[str, Any] | None:
        rec = self.get(f"ROUTE#{route}", self.segment_sk(segment, total))
        return rec.data if rec else None

    def save_segment(self, route: str, segment: int, total: int, data: dict[str, Any]) -> None:
        self.put(f"ROUTE#{route}", self.segment_sk(segment, total), data)

    def segments(self, route: str) -> list[Record]:
        return list(self.query(f"ROUTE#{route}", "SEGMENT#"))

    def clear_segments(self, route: str) -> int:
        n = 0
        for rec in self.segments(route):
            self.delete(rec.pk, rec.sk)
            n += 1
        return n

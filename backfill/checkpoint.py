"""One scan segment's saved state: the control table's SegmentState (dualwrite.control.segments)."""

from __future__ import annotations

from dualwrite.control.segments import SegmentState

__all__ = ["SegmentState"]

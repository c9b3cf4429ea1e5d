"""What a switch of direction journals (DESIGN.md section 8), in its cutover or rollback entry
under "reverse": whether reverse replication is on, the overlap O, each route's switch
(T = the entry's `at`, journaled before any function was re-pointed, and the overlap saved
with it) and each event source mapping enabled for the reverse direction. A re-run after a
kill reads it back and does exactly the same (T never moves later: a later start would
lose writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dualwrite.jsondoc import JsonObject

ROLLBACK_LOSES_WRITES = (
    "reverse replication is off (cutover.reverse: false): a rollback will lose every write "
    "made to the new tables after the cutover"
)


@dataclass(frozen=True)
class RouteSwitch:
    """One route's direction as the switch saves it."""

    route: str
    direction: str  # "forward" / "reverse"
    switched_at: float
    overlap_s: float
    #: saved in the control table (False: still to do, or waiting for a drain)
    saved: bool = False
    #: why it could not be saved yet (the previous switch still drains)
    pending: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "direction": self.direction,
            "switched_at": self.switched_at,
            "overlap_s": self.overlap_s,
            "saved": self.saved,
            "pending": self.pending,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteSwitch:
        return cls(
            route=str(data["route"]),
            direction=str(data["direction"]),
            switched_at=float(data["switched_at"]),
            overlap_s=float(data.get("overlap_s", 0.0)),
            saved=bool(data.get("saved")),
            pending=data.get("pending"),
        )


@dataclass(frozen=True)
class MappingChange:
    """An event source mapping on a target stream, enabled with the reverse time filter.
    Journaled before the update; `was_enabled`/`previous_filter` are as read before it."""

    uuid: str
    function_arn: str
    stream_arn: str
    starts_at: float
    was_enabled: bool
    previous_filter: Mapping[str, Any] | None = None
    done: bool = False

    def to_json(self) -> JsonObject:
        return {
            "uuid": self.uuid,
            "function_arn": self.function_arn,
            "stream_arn": self.stream_arn,
            "starts_at": self.starts_at,
            "was_enabled": self.was_enabled,
            "previous_filter": dict(self.previous_filter) if self.previous_filter else None,
            "done": self.done,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MappingChange:
        previous = data.get("previous_filter")
        return cls(
            uuid=str(data["uuid"]),
            function_arn=str(data.get("function_arn") or ""),
            stream_arn=str(data.get("stream_arn") or ""),
            starts_at=float(data.get("starts_at", 0.0)),
            was_enabled=bool(data.get("was_enabled")),
            previous_filter=dict(previous) if isinstance(previous, Mapping) else None,
            done=bool(data.get("done")),
        )


@dataclass(frozen=True)
class DirectionSwitch:
    """The switch of direction of one cutover or rollback entry."""

    #: reverse replication on (cutover.reverse); off: no direction changes, and a rollback
    #: loses the writes made to the new tables (`note` says so)
    reverse: bool
    #: O: cutover.overlap_seconds, or the longest Timeout of the re-pointed functions
    overlap_s: float
    routes: tuple[RouteSwitch, ...] = ()
    mappings: tuple[MappingChange, ...] = ()
    note: str | None = None

    @property
    def complete(self) -> bool:
        return all(r.saved for r in self.routes) and all(m.done for m in self.mappings)

    def with_route(self, switch: RouteSwitch) -> DirectionSwitch:
        if all(r.route != switch.route for r in self.routes):
            return replace(self, routes=(*self.routes, switch))
        return replace(
            self, routes=tuple(switch if r.route == switch.route else r for r in self.routes)
        )

    def with_mapping(self, change: MappingChange) -> DirectionSwitch:
        if all(m.uuid != change.uuid for m in self.mappings):
            return replace(self, mappings=(*self.mappings, change))
        return replace(
            self, mappings=tuple(change if m.uuid == change.uuid else m for m in self.mappings)
        )

    def mapping(self, uuid: str) -> MappingChange | None:
        return next((m for m in self.mappings if m.uuid == uuid), None)

    def to_json(self) -> JsonObject:
        return {
            "reverse": self.reverse,
            "overlap_s": self.overlap_s,
            "routes": [r.to_json() for r in self.routes],
            "mappings": [m.to_json() for m in self.mappings],
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DirectionSwitch:
        return cls(
            reverse=bool(data.get("reverse")),
            overlap_s=float(data.get("overlap_s", 0.0)),
            routes=tuple(RouteSwitch.from_json(r) for r in data.get("routes") or ()),
            mappings=tuple(MappingChange.from_json(m) for m in data.get("mappings") or ()),
            note=data.get("note"),
        )

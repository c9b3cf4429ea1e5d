"""Reverse replication's records (DESIGN.md section 8):

    ROUTE#<route>    DIRECTION            the route's direction and its latest switch
    OWN#<route>      <at>#<id>            fingerprints of one reverse batch's own writes
                                          (expire: only the check window needs them)
    FOREIGN#<route>  <key id>             a write to the old table nobody re-pointed

The direction is written with an optimistic condition on what was read: the cutover's switch
and the replicator's "drained" must not overwrite each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from dualwrite.control.table import ControlTable
from dualwrite.errors import ConditionFailedError
from dualwrite.reverse.direction import Direction
from dualwrite.reverse.foreign import SPAN_SLACK_S, ForeignWrite, OwnWrites
from dualwrite.wire import key_id

#: how long own-write fingerprints are kept after their span: a source-stream record is
#: checked within the stream's 24 h retention at the latest
OWN_WRITES_TTL_S = 2 * 86400.0
#: fingerprints per journal item: one is 35 bytes of the item's JSON, so 8,000 keep an item
#: near 280 KB, under DynamoDB's 400 KB (an email change of a user with 12,000 memberships
#: journals 12,000 writes in one batch)
OWN_WRITES_PER_ITEM = 8_000


def _at_key(at: float) -> str:
    """A sort key that orders by time (epoch seconds, fixed width)."""
    return f"{max(at, 0.0):017.6f}"


class DirectionRecords(ControlTable):
    # --- direction ------------------------------------------------------------------
    def direction(self, route: str) -> Direction:
        """The route's direction (forward, never switched, when nothing is recorded)."""
        rec = self.get(f"ROUTE#{route}", "DIRECTION")
        return Direction.from_json(rec.data) if rec else Direction()

    def save_direction(self, route: str, state: Direction, *, expected: Direction) -> bool:
        """Replace the route's direction if it is still `expected` (as read). False when
        someone else changed it first: read it again and decide again."""
        current = self.get(f"ROUTE#{route}", "DIRECTION")
        try:
            if current is None:
                if expected != Direction():
                    return False
                self.put(f"ROUTE#{route}", "DIRECTION", state.to_json(), only_if_absent=True)
            else:
                if Direction.from_json(current.data) != expected:
                    return False
                self.put(f"ROUTE#{route}", "DIRECTION", state.to_json(), if_data=current.data)
        except ConditionFailedError:
            return False
        return True

    # --- own writes -----------------------------------------------------------------
    def record_own_writes(self, own: OwnWrites) -> None:
        """Journal one reverse batch's fingerprints (before it writes), in as many items
        of the same span as the item size limit needs. Journaled again with the same id
        (its span narrowed once the writes are made), it replaces those items."""
        name = own.id or self._ids()
        prints = sorted(own.fingerprints)
        for n, start in enumerate(range(0, max(len(prints), 1), OWN_WRITES_PER_ITEM)):
            part = replace(own, fingerprints=frozenset(prints[start : start + OWN_WRITES_PER_ITEM]))
            sk = f"{_at_key(own.at)}#{name}#{n}"
            self.put(
                f"OWN#{own.route}", sk, part.to_json(), expires_at=own.until + OWN_WRITES_TTL_S
            )

    def own_writes(self, route: str, start: float, end: float, span_s: float) -> list[OwnWrites]:
        """The journal entries whose span may cover a change made between start and end
        (entries begin at most span_s before the changes they cover)."""
        lo = _at_key(start - span_s - SPAN_SLACK_S)
        hi = _at_key(end + SPAN_SLACK_S) + "#~"
        return [OwnWrites.from_json(r.data) for r in self.query(f"OWN#{route}", between=(lo, hi))]

    # --- foreign writes -------------------------------------------------------------
    def record_foreign(self, writes: Iterable[ForeignWrite]) -> None:
        """List foreign writes, once per key (a later write of a listed key keeps the first
        time, and clears a re-mapping done before it; one made after the listing was
        resolved lists the key again, from its own time)."""
        for write in writes:
            pk, sk = f"FOREIGN#{write.route}", key_id(write.key)
            known = self.get(pk, sk)
            if known is not None:
                first = ForeignWrite.from_json(known.data)
                if not first.resolved:
                    if first.remapped_at is None:
                        continue
                    write = ForeignWrite(write.route, write.key, first.at)
            self.put(pk, sk, write.to_json())

    def foreign_writes(self, route: str, *, unresolved_only: bool = False) -> list[ForeignWrite]:
        writes = [ForeignWrite.from_json(r.data) for r in self.query(f"FOREIGN#{route}")]
        return [w for w in writes if not w.resolved] if unresolved_only else writes

    def mark_remapped(self, write: ForeignWrite, at: float) -> None:
        self._save_foreign(replace(write, remapped_at=at))

    def resolve_foreign(self, write: ForeignWrite, reason: str, at: float) -> None:
        """An operator handled it (carried it over, or judged it moot): it stays recorded,
        and no longer blocks decommission or a repair."""
        self._save_foreign(replace(write, resolved_at=at, resolution=reason))

    def _save_foreign(self, write: ForeignWrite) -> None:
        self.put(f"FOREIGN#{write.route}", key_id(write.key), write.to_json())

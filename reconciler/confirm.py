"""Re-reading both sides before a difference counts: changes in flight are not drift.

A candidate is re-read (source and target, strongly consistent) once `settle_s` has passed
since it was seen, and its expected item recomputed from the source as it is now. If the
difference persists and neither side moved since the previous read, it is confirmed. If a
side moved (a live change is being replicated), it is read again after another settle
period, up to `rounds` reads; after the last one it is judged as it stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dualwrite.errors import UnmappableError
from dualwrite.wire import Item, key_id
from reconciler import expect
from reconciler.compare import Candidate, Difference, classify, same_item
from reconciler.reads import Sides


@dataclass(frozen=True)
class Reread:
    candidate: Candidate
    expected: Item | None
    actual: Item | None
    #: the source item can no longer be mapped: quarantine territory, not judged here
    unjudged: bool = False
    #: the source item as read (directly mapped candidates with a source key)
    source: Item | None = None

    @property
    def kind(self) -> str | None:
        return None if self.unjudged else classify(self.expected, self.actual)

    @property
    def moved(self) -> bool:
        c = self.candidate
        return not (same_item(self.expected, c.expected) and same_item(self.actual, c.actual))

    def difference(self) -> Difference:
        kind = self.kind
        assert kind is not None
        c = self.candidate
        return Difference(
            c.route,
            kind,
            c.target_key,
            c.source_key,
            c.group,
            self.expected,
            self.actual,
            self.source,
        )


def reread(sides: Sides, candidates: Sequence[Candidate]) -> list[Reread]:
    """Read both sides of each candidate again and recompute what the target should hold."""
    route = sides.route
    mapping = route.mapping
    direct = [c.source_key for c in candidates if c.group is None and c.source_key is not None]
    # the source first: a replicator write landing between the two reads shows as a move
    sources = sides.source_items(direct)
    targets = sides.target_items([c.target_key for c in candidates])
    derived: dict[str, Item | None] = {}
    out: list[Reread] = []
    for c in candidates:
        actual = targets.get(key_id(c.target_key))
        if c.group is not None:
            gid = expect.group_id(c.group)
            if gid not in derived:
                derived[gid] = expect.derived(
                    mapping, c.group, sides.members(c.group), route.name_for
                )
            out.append(Reread(c, derived[gid], actual))
            continue
        if c.source_key is None:
            out.append(Reread(c, None, actual))
            continue
        source = sources.get(key_id(c.source_key))
        try:
            expected = expect.direct_at(mapping, route.target_names, c.target_key, source)
        except UnmappableError:
            out.append(Reread(c, None, actual, unjudged=True, source=source))
            continue
        out.append(Reread(c, expected, actual, source=source))
    return out


def confirm(
    sides: Sides,
    candidates: Sequence[Candidate],
    *,
    settle_s: float = 1.0,
    rounds: int = 3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Difference]:
    """The candidates that are still differences after re-reading both sides."""
    pending = list({key_id(c.target_key): c for c in candidates}.values())
    confirmed: list[Difference] = []
    for attempt in range(max(1, rounds)):
        if not pending:
            break
        wait = settle_s - (clock() - max(c.seen_at for c in pending))
        if wait > 0:
            sleep(wait)
        again: list[Candidate] = []
        for r in reread(sides, pending):
            if r.kind is None:
                continue  # in flight when first seen, and now in place
            if r.moved and attempt < rounds - 1:
                c = r.candidate
                again.append(
                    Candidate(
                        c.route, c.target_key, c.source_key, c.group, r.expected, r.actual, clock()
                    )
                )
                continue
            confirmed.append(r.difference())
        pending = again
    return confirmed

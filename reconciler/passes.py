"""The two passes of a check, run one unit (reconciler.units) at a time. Adapter.

- source unit (route, segment): scan the source and compute the expected target items with
  the mapping (derived User items from the scan pages through PageGrouper/derive_items).
- target unit (target table, segment): scan the target once for every route that writes
  to it; each route considers only the items its mapping owns.

A check runs the units twice at most (reconciler.run):
1. digest phase (`Checker.digest`): expected items and held items are folded into per-bucket
   digests (reconciler.digest); no per-item reads at all.
2. exact phase, only for the buckets whose digests differ (`Checker.only`), or for every
   bucket with `exact`: the expected items are read from the target in 100-key consistent
   BatchGetItem calls (missing, mismatched); owned target items have their sources looked
   up (extra); a derived item is kept when any source item of its group is seen (its
   members are contiguous with it in the scan) and otherwise checked with a one-item Query.
   Every difference is re-read on both sides before it counts (reconciler.confirm).

Units process one page at a time and keep only differences (and a fixed number of digest
buckets), so memory stays flat however big the tables are. A unit can stop after any page
(`should_stop`) and resume later from its `UnitState` (the scheduled Lambda's slices); the
CLI runs every unit to the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from dualwrite.aws import codec
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import RequestCounter, ScanPage, scan_pages
from dualwrite.derived import Group, PageGrouper, derive_items
from dualwrite.errors import UnmappableError
from dualwrite.wire import AttributeValue, Item, Key, key_id, key_of
from reconciler import expect
from reconciler.compare import Candidate, Difference, Tally, classify
from reconciler.confirm import confirm
from reconciler.digest import DEFAULT_BUCKETS, Digests, bucket_of
from reconciler.reads import Sides
from reconciler.spec import RouteSpec
from reconciler.units import SOURCE, Unit, UnitOutcome, UnitState

DEFAULT_PAGE_SIZE = 1000


@dataclass
class Checker:
    """Runs units. Clients are per thread, so one Checker serves a pool of workers."""

    clients: Clients
    routes: dict[str, RouteSpec]
    page_size: int = DEFAULT_PAGE_SIZE
    settle_s: float = 1.0
    rounds: int = 3
    on_items: Callable[[int], None] = lambda _n: None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: digest phase: fold items into per-bucket digests instead of reading item by item
    digest: bool = False
    #: exact phase: per route, the only buckets to check (None: every bucket)
    only: dict[str, frozenset[int]] | None = None
    buckets: int = DEFAULT_BUCKETS

    def _wanted(self, route: str, key: Key) -> bool:
        if self.only is None:
            return True
        chosen = self.only.get(route)
        return chosen is not None and bucket_of(key, self.buckets) in chosen

    def run(
        self, unit: Unit, state: UnitState, should_stop: Callable[[], bool] = lambda: False
    ) -> UnitOutcome:
        counter = RequestCounter()
        digests = {name: Digests(self.buckets) for name in unit.routes} if self.digest else {}
        if state.done:
            return UnitOutcome([], counter, digests)
        # the digest phase only compares what it reads with what it reads: binary may stay
        # base64 text on both sides (no decoding walk per value); it writes nothing
        with codec.binary_as_text() if self.digest else contextlib.nullcontext():
            if unit.kind == SOURCE:
                diffs = self._source(unit, state, should_stop, counter, digests)
            else:
                diffs = self._target(unit, state, should_stop, counter, digests)
        return UnitOutcome(diffs, counter, digests)

    def _pages(
        self, table: str, unit: Unit, state: UnitState, counter: RequestCounter
    ) -> Iterator[ScanPage]:
        """The unit's scan segment of `table`, resumed from the state's last key."""
        return scan_pages(
            self.clients.dynamodb,
            table,
            segment=unit.segment,
            total_segments=unit.total,
            start_key=state.last_key,
            limit=self.page_size,
            counter=counter,
        )

    def _confirm(self, sides: Sides, candidates: list[Candidate]) -> list[Difference]:
        if not candidates:
            return []
        return confirm(
            sides,
            candidates,
            settle_s=self.settle_s,
            rounds=self.rounds,
            clock=self.clock,
            sleep=self.sleep,
        )

    # --- source -> target: missing, mismatched ------------------------------------------
    def _source(
        self,
        unit: Unit,
        state: UnitState,
        should_stop: Callable[[], bool],
        counter: RequestCounter,
        digests: dict[str, Digests],
    ) -> list[Difference]:
        route = self.routes[unit.routes[0]]
        mapping = route.mapping
        sides = Sides(self.clients, route, counter)
        tally = state.tally(route.name)
        grouper = (
            PageGrouper(mapping, from_start=state.last_key is None) if mapping.group_attr else None
        )
        skip = expect.group_id(state.skip_group) if state.skip_group is not None else None
        candidates: list[Candidate] = []
        for page in self._pages(route.source, unit, state, counter):
            last = page.last_key is None
            stop = not last and should_stop()
            # key_id -> (target key, expected item, source key, group); one page at a time
            expected: dict[str, tuple[Key, Item, Key | None, AttributeValue | None]] = {}
            folded = digests.get(route.name)
            for item in page.items:
                tally.source_items += 1
                try:
                    if folded is not None:  # digest phase: nothing per item to keep (hot path)
                        tkey, hashed = expect.direct_hashed(mapping, route.target_names, item)
                        folded.expect_hash(tkey, hashed)
                        tally.expected_target_items += 1
                        continue
                    tkey, titem = expect.direct(mapping, route.target_names, item)
                except UnmappableError:
                    tally.quarantined += 1
                    continue
                expected[key_id(tkey)] = (tkey, titem, mapping.source_key_of_item(item), None)
            if grouper is not None:
                groups = grouper.add_page(page.items, last_page=last)
                carried: AttributeValue | None = None
                if stop:
                    # the carried group may go on past the checkpoint: derive it from a query
                    # now, and skip it when the next slice sees its tail
                    rest = grouper.add_page([], last_page=True)
                    groups += [Group(g.value, g.members, complete=False) for g in rest]
                    carried = rest[-1].value if rest else None
                kept: list[Group] = []
                for g in groups:
                    if skip is not None and expect.group_id(g.value) == skip:
                        continue
                    skip = None
                    kept.append(g)
                derived = derive_items(mapping, kept, sides.members, route.name_for)
                for g, (dkey, ditem) in zip(kept, derived, strict=True):
                    if ditem is None:
                        continue
                    if folded is not None:
                        folded.expect(dkey, ditem)
                        tally.expected_target_items += 1
                    else:
                        expected[key_id(dkey)] = (dkey, ditem, None, g.value)
                if stop:
                    state.skip_group = carried
                elif skip is None:
                    state.skip_group = None
            tally.expected_target_items += len(expected)  # none kept in the digest phase
            if self.only is not None:
                expected = {k: e for k, e in expected.items() if self._wanted(route.name, e[0])}
            if expected:
                found = sides.target_items([e[0] for e in expected.values()])
                now = self.clock()
                for kid, (tkey, titem, skey, group) in expected.items():
                    actual = found.get(kid)
                    if classify(titem, actual) is not None:
                        candidates.append(
                            Candidate(route.name, tkey, skey, group, titem, actual, now)
                        )
            state.last_key = page.last_key
            state.done = last
            self.on_items(len(page.items))
            if stop:
                break
        diffs = self._confirm(sides, candidates)
        tally.count(diffs)
        return diffs

    # --- target -> source: extra --------------------------------------------------------
    def _target(
        self,
        unit: Unit,
        state: UnitState,
        should_stop: Callable[[], bool],
        counter: RequestCounter,
        digests: dict[str, Digests],
    ) -> list[Difference]:
        specs = [self.routes[n] for n in unit.routes]
        names = specs[0].target_names
        hash_name = names[0]
        sides = {r.name: Sides(self.clients, r, counter) for r in specs}
        for r in specs:
            state.tally(r.name)
        # derived items waiting for a sign of life from their group: gid -> (key, group,
        # item, partition); and groups seen alive in the current partition: gid -> partition
        pending: dict[str, dict[str, tuple[Key, AttributeValue, Item, str]]] = {
            r.name: {} for r in specs
        }
        alive: dict[str, dict[str, str]] = {r.name: {} for r in specs}
        candidates: dict[str, list[Candidate]] = {r.name: [] for r in specs}
        # digest phase (the hot path): per route, what owns a key and where its items fold
        folds = (
            [(r.mapping.owns, digests[r.name], state.tally(r.name)) for r in specs]
            if self.digest
            else []
        )
        for page in self._pages(unit.table, unit, state, counter):
            last = page.last_key is None
            stop = not last and should_stop()
            now = self.clock()
            lookups: dict[str, list[tuple[Key, Key, Item]]] = {}
            if self.digest:
                _fold_held(page.items, names, folds)
            else:
                for item in page.items:
                    tkey = key_of(item, names)
                    owner = next((r for r in specs if r.mapping.owns(tkey)), None)
                    if owner is None:
                        continue  # another route's key space, or none in this run
                    mapping = owner.mapping
                    state.tally(owner.name).target_items += 1
                    if not self._wanted(owner.name, tkey):
                        continue
                    group = mapping.group_for_target(tkey)
                    if group is not None:
                        pending[owner.name][expect.group_id(group)] = (
                            tkey,
                            group,
                            item,
                            expect.target_partition(tkey, hash_name),
                        )
                        continue
                    skey = mapping.source_key_for(tkey)
                    if skey is None:  # in the route's key space, but nothing maps there
                        candidates[owner.name].append(
                            Candidate(owner.name, tkey, None, None, None, item, now)
                        )
                        continue
                    lookups.setdefault(owner.name, []).append((tkey, skey, item))
            for name, rows in lookups.items():
                mapping = self.routes[name].mapping
                found = sides[name].source_items([skey for _, skey, _ in rows])
                for tkey, skey, item in rows:
                    source = found.get(key_id(skey))
                    if source is not None:
                        group = mapping.group_of(source)
                        if group is not None:
                            alive[name][expect.group_id(group)] = expect.target_partition(
                                mapping.derived_key(group), hash_name
                            )
                        own_keys = mapping.target_keys(mapping.source_key_of_item(source))
                        maps_here = key_id(tkey) in {key_id(k) for k in own_keys}
                        if maps_here:
                            continue  # the source side's unit judges its content
                    candidates[name].append(Candidate(name, tkey, skey, None, None, item, now))
            tail = (
                expect.target_partition(key_of(page.items[-1], names), hash_name)
                if page.items
                else None
            )
            for name, waiting in pending.items():
                for gid, (tkey, group, item, part) in list(waiting.items()):
                    if gid in alive[name]:
                        del waiting[gid]
                    elif last or stop or part != tail:
                        del waiting[gid]
                        if not sides[name].has_members(group):
                            candidates[name].append(
                                Candidate(name, tkey, None, group, None, item, now)
                            )
                alive[name] = {g: p for g, p in alive[name].items() if p == tail}
            state.last_key = page.last_key
            state.done = last
            self.on_items(len(page.items))
            if stop:
                break
        diffs: list[Difference] = []
        for name, found_candidates in candidates.items():
            confirmed = self._confirm(sides[name], found_candidates)
            state.tally(name).count(confirmed)
            diffs += confirmed
        return diffs


def _fold_held(
    items: Sequence[Item],
    names: Sequence[str],
    folds: Sequence[tuple[Callable[[Key], bool], Digests, Tally]],
) -> None:
    """The digest phase's target pass over one page (per item: key, owner, fold)."""
    for item in items:
        tkey = key_of(item, names)
        for owns, folded, tally in folds:
            if owns(tkey):  # else another route's key space, or none in this run
                tally.target_items += 1
                folded.hold(tkey, item)
                break

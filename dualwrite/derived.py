"""Derived items (the User item of `memberships`): grouping source items, pure.

A user's memberships are contiguous in a Scan of UserMembershipTable (userId is its hash
key), and each scan segment is read in order, so a page grouper can hand out complete groups
as pages arrive, carry the last (possibly continuing) group into the next page, and ask for a
Query only for the first group after a resume, whose start it cannot see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from dualwrite.mapping.base import Mapping
from dualwrite.wire import AttributeValue, Item, Key


@dataclass(frozen=True)
class Group:
    """One group of source items (one user's memberships)."""

    value: AttributeValue
    members: tuple[Item, ...]
    #: False when some members may lie outside what was seen (query the source instead)
    complete: bool


@dataclass
class PageGrouper:
    """Turns consecutive scan pages of one segment into complete groups."""

    mapping: Mapping
    #: True when scanning from the segment's start (the first group is whole)
    from_start: bool = True
    _carry: list[Item] = field(default_factory=list)
    _carry_complete: bool = True
    _first: bool = True

    def add_page(self, items: Sequence[Item], *, last_page: bool) -> list[Group]:
        """Groups finished by this page; with last_page, everything left."""
        out: list[Group] = []
        run: list[Item] = list(self._carry)
        run_complete = self._carry_complete if self._carry else (self.from_start or not self._first)
        group_of = self.mapping.group_of
        current = group_of(run[0]) if run else None
        seen = False
        for item in items:
            group = group_of(item)
            if group is None:
                continue
            seen = True
            # a key value comes back spelled one way from its table: plain equality
            if current is not None and group != current:
                out.append(Group(current, tuple(run), run_complete))
                run, run_complete = [], True
            current = group
            run.append(item)
        if seen:  # only a page that shows a group ends the uncertainty about the first group
            self._first = False
        if run and last_page:
            out.append(Group(current or {}, tuple(run), run_complete))
            run = []
        self._carry, self._carry_complete = run, run_complete
        return out


def derive_items(
    mapping: Mapping,
    groups: Iterable[Group],
    fetch_members: Callable[[AttributeValue], list[Item]],
    name_for: Callable[[AttributeValue], str | None] | None = None,
) -> list[tuple[Key, Item | None]]:
    """The derived target item of each group (None: delete it), querying incomplete groups."""
    out: list[tuple[Key, Item | None]] = []
    for group in groups:
        members = list(group.members) if group.complete else fetch_members(group.value)
        name = name_for(group.value) if name_for is not None and members else None
        out.append((mapping.derived_key(group.value), mapping.derive(group.value, members, name)))
    return out

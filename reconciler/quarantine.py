"""Resolving quarantine entries that a repair made moot.

After `reconcile --repair` leaves a route at parity, an unresolved quarantine entry of that
route is resolved automatically when its source item is gone (nothing left to migrate) or
now maps cleanly (the mapping no longer refuses it, and the route was just proven at parity,
so the target holds its mapped form). Entries whose source key cannot be found in the
recorded item or stream record, or whose source item still cannot be mapped, stay.
"""

from __future__ import annotations

from dualwrite.control import ControlStore
from dualwrite.errors import UnmappableError
from dualwrite.status import source_key_from_record
from dualwrite.wire import Key, key_id
from reconciler.reads import Sides


def resolve_moot(store: ControlStore, sides: Sides) -> list[str]:
    """Resolve the route's entries whose source item is gone or maps cleanly. Returns ids."""
    route = sides.route
    entries: list[tuple[str, Key]] = []
    for entry in store.quarantined(route.name):
        if entry.route != route.name:
            continue
        key = source_key_from_record(entry.record, route.source_names)
        if key is not None:
            entries.append((entry.id, key))
    if not entries:
        return []
    sources = sides.source_items([k for _, k in entries])
    resolved: list[str] = []
    for sk, key in entries:
        item = sources.get(key_id(key))
        if item is None:
            note = "source item gone; route verified at parity by reconcile --repair"
        else:
            try:
                route.mapping.transform(item)
            except UnmappableError:
                continue
            note = "source item now maps cleanly; route verified at parity by reconcile --repair"
        store.resolve_quarantine(sk, note)
        resolved.append(sk)
    return resolved

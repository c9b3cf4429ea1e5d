"""What fixes the drift a reconcile leaves behind: a repair, or something else.

A repair cannot fix every difference: a listed foreign write while a route replicates in
reverse (a repair never rewrites or deletes one, DESIGN.md section 8), a source item the
target table refuses (the repair's write is refused the same way), or a difference the
repair itself found it cannot make (no inverse, unrepresentable, a condition it cannot
express). `advise` names what does fix those, and says whether a (re-)repair can fix any of
the rest, so that `reconcile` advises one only when it can help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from dualwrite.control import ControlStore
from dualwrite.status import source_key_from_record
from dualwrite.wire import Item, Key, from_lambda_json, key_id, key_text
from reconciler.compare import Difference
from reconciler.spec import RouteSpec

#: how the backfill and the replicator word a write the target refuses for good
REFUSALS = ("the target table refuses it", "the target table rejected the item")
#: keys named per kind of advice (the rest are counted)
SHOWN = 5


@dataclass(frozen=True)
class Advice:
    lines: tuple[str, ...] = ()
    #: some remaining difference is one a (re-)repair can fix
    repair_helps: bool = False


def advise(
    spec: RouteSpec,
    remaining: Sequence[Difference],
    store: ControlStore,
    *,
    reverse: bool,
    refused: Mapping[str, str] | None = None,
    held: Set[str] = frozenset(),
) -> Advice:
    """`refused` (target key id -> reason) and `held` (target key ids) are what a repair
    found it cannot make; without a repair, the control table tells foreign writes and
    quarantined refusals apart."""
    if not remaining:
        return Advice()
    foreign_ids = (
        {key_id(w.key) for w in store.foreign_writes(spec.name, unresolved_only=True)}
        if reverse
        else set()
    )
    quarantined = _refused_in_quarantine(spec, store)
    foreign: list[Key] = []
    refusals: list[tuple[Difference, str]] = []
    other_held = 0
    helps = False
    for d in remaining:
        kid = key_id(d.target_key)
        source_id = key_id(d.source_key) if d.source_key else None
        if source_id is not None and source_id in foreign_ids:
            foreign.append(d.source_key or {})
        elif refused and kid in refused:
            refusals.append((d, refused[kid]))
        elif source_id is not None and _still_refused(d, quarantined.get(source_id)):
            refusals.append((d, quarantined[source_id][0]))
        elif kid in held:
            other_held += 1
        else:
            helps = True
    lines: list[str] = []
    if foreign:
        keys = ", ".join(key_text(k) for k in foreign[:SHOWN])
        more = f" (+{len(foreign) - SHOWN})" if len(foreign) > SHOWN else ""
        lines.append(
            f"{spec.name}: {len(foreign)} difference(s) are foreign writes to {spec.source} "
            f"({keys}{more}), which a repair never rewrites or deletes: `dualwrite foreign` "
            "lists them; once the writer is found, `dualwrite foreign --carry KEY` (or "
            "--carry-all) copies one to the new table, `dualwrite foreign --resolve KEY "
            "--reason TEXT` (or --resolve-all) records it as handled"
        )
    for d, why in refusals[:SHOWN]:
        source = key_text(d.source_key) if d.source_key else key_text(d.target_key)
        lines.append(
            f"{spec.name}: fix the source item {spec.source} {source} (a write to it "
            f"replicates again): {spec.target} {key_text(d.target_key)} cannot be written, "
            f"a repair would be refused the same way ({why})"
        )
    if len(refusals) > SHOWN:
        lines.append(f"{spec.name}: {len(refusals) - SHOWN} more item(s) the target refuses")
    if other_held:
        lines.append(
            f"{spec.name}: {other_held} difference(s) a repair cannot make (see the notes)"
        )
    return Advice(tuple(lines), helps)


def _refused_in_quarantine(
    spec: RouteSpec, store: ControlStore
) -> dict[str, tuple[str, Item | None]]:
    """Source key id -> (reason, the item as quarantined or None) of the route's unresolved
    entries the target refused."""
    out: dict[str, tuple[str, Item | None]] = {}
    for entry in store.quarantined(spec.name):
        if entry.route != spec.name or not any(r in entry.reason for r in REFUSALS):
            continue
        key = source_key_from_record(entry.record, spec.source_names)
        if key is not None:
            image = _image(entry.record)
            # the backfill may keep only the key (its refused write was the target's item)
            whole = image is not None and set(image) != set(key)
            out[key_id(key)] = (entry.reason, image if whole else None)
    return out


def _image(record: object) -> Item | None:
    """The item a quarantine entry kept (a backfilled item or a stream record's NewImage)."""
    if not isinstance(record, Mapping) or "__omitted__" in record:
        return None
    stream = record.get("dynamodb")
    image = stream.get("NewImage") if isinstance(stream, Mapping) else record
    if not isinstance(image, Mapping):
        return None
    try:
        return {str(n): from_lambda_json(v) for n, v in image.items()}
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _still_refused(d: Difference, entry: tuple[str, Item | None] | None) -> bool:
    """The source item is as it was refused (a changed one may be written now)."""
    if entry is None or d.source_item is None:  # gone: a repair deletes its target item
        return False
    image = entry[1]
    return image is None or image == d.source_item

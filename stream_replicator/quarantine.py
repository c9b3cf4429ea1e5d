"""The replicator's quarantine: a record the mapping (or the target) cannot take is kept in
the control table with its full record and the reason, once per record even when the stream
delivers it again."""

from __future__ import annotations

import json
import logging

from dualwrite.control import ControlStore
from dualwrite.errors import ConditionFailedError, DualwriteError
from dualwrite.wire import to_lambda_json
from stream_replicator.records import Change, StreamRecord

log = logging.getLogger("dualwrite-replicator.apply")

#: control-table partition remembering which stream records were already quarantined
SEEN_PK = "QUARANTINE#SEEN"
#: a stream keeps records 24 h; remembering them for two days covers every redelivery
SEEN_TTL_S = 2 * 24 * 3600
#: a quarantined record must fit in one control-table item (400 KB, with room for the rest)
QUARANTINE_RECORD_MAX = 300 * 1024


def quarantine_record(
    store: ControlStore, route: str, change: Change, reason: str, *, now: float
) -> bool:
    """Keep the full record with its reason, once per record. False when it could not."""
    seen_sk = f"{route}#{change.sequence_number}#{change.event_id}"
    try:
        # the marker first, naming the entry it stands for: a failure after it leaves the
        # entry to the redelivery (written under that id), never a second entry; a marker
        # without an id is from before (its entry was written first)
        seen = store.get(SEEN_PK, seen_sk)
        fresh = False  # this delivery made the marker: its entry cannot exist yet
        if seen is None:
            sk = store.quarantine_id(route)
            marker = {"route": route, "sequence_number": change.sequence_number, "entry": sk}
            try:
                store.put(
                    SEEN_PK, seen_sk, marker, expires_at=now + SEEN_TTL_S, only_if_absent=True
                )
                fresh = True
            except ConditionFailedError:  # a concurrent delivery got there first
                seen = store.get(SEEN_PK, seen_sk)
        entry = str(seen.data.get("entry") or "") if seen is not None else sk
        if entry and (fresh or store.quarantine_entry(entry) is None):
            store.quarantine(
                route,
                reason,
                record=fit_record(to_lambda_json(change.raw)),
                source="replicator",
                sk=entry,
            )
        log.warning("route %s: record %s quarantined: %s", route, change.sequence_number, reason)
        return True
    except DualwriteError as exc:
        log.warning(
            "route %s: could not quarantine record %s (%s); it will be redelivered",
            route,
            change.sequence_number,
            type(exc).__name__,
        )
        return False


def fit_record(record: StreamRecord, limit: int = QUARANTINE_RECORD_MAX) -> StreamRecord:
    """The record as the quarantine keeps it (a Lambda event record, AWS's shape): whole when
    it fits in a control-table item, else without its old image, else with its keys only (the
    item's current state is still in the source). What was left out is said in "omitted", so
    nothing is dropped silently."""

    def size(r: StreamRecord) -> int:
        return len(json.dumps(r, separators=(",", ":"), default=str).encode("utf-8"))

    if size(record) <= limit:
        return record
    body = dict(record.get("dynamodb") or {})
    omitted: list[str] = []
    for name in ("OldImage", "NewImage"):
        if name in body:
            del body[name]
            omitted.append(name)
            trimmed = {**record, "dynamodb": body, "omitted": omitted}
            if size(trimmed) <= limit:
                return trimmed
    return {**record, "dynamodb": body, "omitted": omitted}

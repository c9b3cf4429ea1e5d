"""The segment copier: one scan segment, page by page, from its checkpoint.

Per page: Scan (Limit 1,000; DynamoDB also stops a page at 1 MB) -> transform each item
through the route's mapping (refused items are quarantined) -> derived items of the groups
the page completed (PageGrouper; only a group cut by a resume is queried) -> target writes
(TargetWriter) -> the checkpoint, saved once every write of the page is acknowledged. A
killed copier therefore redoes at most the page it was on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from backfill.checkpoint import SegmentState
from backfill.route import RouteJob
from backfill.writer import TargetWriter, retrying, transient
from dualwrite.aws.dynamo import RequestCounter, ScanPage, batch_get, scan_pages
from dualwrite.control import ControlStore
from dualwrite.derived import Group, PageGrouper, derive_items
from dualwrite.errors import AwsError, StopRequested, UnmappableError
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import AttributeValue, Item, Key, key_id, key_of


@dataclass(frozen=True)
class SegmentOutcome:
    """What one call of copy_segment did (this call only; the checkpoint has the totals)."""

    route: str
    segment: int
    total: int
    done: bool
    resumed: bool
    items_read: int = 0
    items_written: int = 0
    quarantined: int = 0
    skipped_existing: int = 0
    deleted: int = 0
    pages: int = 0
    write_requests: int = 0
    consumed_wcu: float = 0.0
    last_key: Key | None = None

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "segment": self.segment,
            "total_segments": self.total,
            "done": self.done,
            "resumed": self.resumed,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "quarantined": self.quarantined,
            "skipped_existing": self.skipped_existing,
            "pages": self.pages,
        }


def _group_id(value: AttributeValue) -> str:
    return key_id({"g": value})


@dataclass
class _Pages:
    """Page bookkeeping: derived-item groups across pages and checkpoints awaiting acks."""

    job: RouteJob
    state: SegmentState
    writer: TargetWriter
    store: ControlStore
    has_time: Callable[[], bool]
    from_start: bool
    #: the group a previous run carried past its last checkpoint (derive it again)
    pending: AttributeValue | None
    carry: AttributeValue | None
    awaiting: deque[tuple[int, SegmentState]]
    grouper: PageGrouper | None = None
    read: int = 0
    quarantined: int = 0
    _issued_before: int = 0

    def refused(self, request: dict[str, Any], why: str) -> None:
        """A write the target refuses for good: quarantined under its source key (the
        inverse's, where the mapping has one; else the target item is kept)."""
        mapping = self.job.mapping
        item = (request.get("PutRequest") or {}).get("Item") or request["DeleteRequest"]["Key"]
        source = mapping.source_key_for(key_of(item, mapping.target_key.names))
        self.job.quarantine(self.store, source or item, f"the target table refuses it: {why}")

    def process(self, page: ScanPage) -> None:
        job, mapping = self.job, self.job.mapping
        last = page.last_key is None
        quarantined = 0
        refused_before = self.writer.refused
        for item in page.items:
            try:
                target = mapping.transform(item)
            except UnmappableError as exc:
                job.quarantine(self.store, item, exc.reason)
                quarantined += 1
                continue
            self.writer.put(target)
        if mapping.group_attr is not None:
            self._derive(page.items, last)
        self.read += len(page.items)
        self.writer.flush(everything=last)
        self.settle_landed()
        quarantined += self.writer.refused - refused_before
        self.quarantined += quarantined
        self.state = replace(
            self.state,
            last_key=page.last_key,
            done=last,
            items_read=self.state.items_read + len(page.items),
            items_written=self.state.items_written + self.writer.issued - self._issued_before,
            quarantined=self.state.quarantined + quarantined,
            carry_group=None if last else self.carry,
        )
        self._issued_before = self.writer.issued
        self.awaiting.append((self.writer.seq, self.state))
        self.save_acknowledged()
        job.progress(len(page.items))

    def _derive(self, items: list[Item], last: bool) -> None:
        mapping = self.job.mapping
        grouped = [g for g in (mapping.group_of(it) for it in items) if g is not None]
        if not grouped and not last:
            return
        if self.grouper is None:
            # Made at the first grouped item: after a resume, the first group is whole
            # when it is not the group carried past the checkpoint (a group's items are
            # contiguous in its segment), so only a group really cut by the resume is queried.
            whole = self.from_start or (
                self.pending is not None
                and bool(grouped)
                and _group_id(grouped[0]) != _group_id(self.pending)
            )
            self.grouper = PageGrouper(mapping, from_start=whole)
        groups = self.grouper.add_page(items, last_page=last)
        if self.pending is not None:
            # the carried group needs its own query when the page does not continue it
            if not grouped or _group_id(grouped[0]) != _group_id(self.pending):
                groups.insert(0, Group(self.pending, (), complete=False))
            self.pending = None
        if grouped:
            self.carry = grouped[-1]
        derived = derive_items(
            mapping,
            groups,
            lambda group: self.job.fetch_members(group, self.has_time),
            self.job.name_for if self.job.names is not None else None,
        )
        for key, item in derived:
            if item is None:
                self.writer.delete(key)
            else:
                self.writer.put(item)

    def settle_landed(self) -> None:
        """A re-run after replication went live writes only where the target has nothing,
        but nothing may be there because the application deleted the item after the Scan
        read it and the replicator already applied that delete: the stale copy would then
        stay for good. So each item that landed is checked against its source again
        (consistent reads, after the put): one whose source item (or, for a derived item,
        every member) is gone now is taken back. A delete made after this read reaches the
        target through the replicator, after the put."""
        writer = self.writer
        if not writer.landed:
            return
        landed, writer.landed = writer.landed, []
        job, mapping = self.job, self.job.mapping
        names = mapping.target_key.names
        direct: list[tuple[Item, Key]] = []
        gone: list[Item] = []
        for item in landed:
            target_key = key_of(item, names)
            source_key = mapping.source_key_for(target_key)
            if source_key is not None:
                direct.append((item, source_key))
                continue
            group = mapping.group_for_target(target_key)
            if group is not None and not job.fetch_members(group, self.has_time):
                gone.append(item)
        if direct:
            found = batch_get(
                job.clients.dynamodb,
                job.source,
                [k for _, k in direct],
                backoff=job.backoff,
                counter=writer.counter,
            )
            gone += [item for item, k in direct if key_id(k) not in found]
        for item in gone:
            writer.take_back(item)

    def save_acknowledged(self) -> None:
        """Save the newest page state whose writes are all acknowledged."""
        best: SegmentState | None = None
        while self.awaiting and self.awaiting[0][0] <= self.writer.watermark:
            best = self.awaiting.popleft()[1]
        if best is not None:
            self.store.save_segment(best.at(self.store.now()))


def _for_next_run(exc: Exception, has_time: Callable[[], bool]) -> bool:
    """Not a failure of the job, the unsent writes redone by the next run: a stop cut the
    wait for the budget short, or throttling past the time margin, where retries stop (a
    Lambda worker would otherwise fail its whole execution)."""
    if isinstance(exc, StopRequested):
        return True
    return isinstance(exc, AwsError) and transient(exc) and not has_time()


def copy_segment(
    job: RouteJob,
    segment: int,
    total: int,
    *,
    stop: Callable[[], bool] = lambda: False,
    has_time: Callable[[], bool] = lambda: True,
) -> SegmentOutcome:
    """Copy one segment from its checkpoint until it is done, stop() says so (checked before
    every page), or has_time() says the time is up (checked between pages: a call copies at
    least one page, so a worker always makes progress)."""
    store = job.thread_store()
    existing = store.segment(job.name, segment, total)
    now = store.now()
    state = existing or SegmentState(job.name, segment, total, started_at=now, updated_at=now)
    resumed = state.resumed
    if state.done:
        return SegmentOutcome(job.name, segment, total, done=True, resumed=True)
    if existing is None:
        store.save_segment(state)
    client = job.clients.dynamodb
    writer = TargetWriter(
        client,
        job.target,
        job.mapping.target_key.names,
        conditional=job.conditional,
        limiter=job.limiter,
        backoff=job.backoff,
        has_time=has_time,
        attempts=job.attempts,
    )
    from_start = state.last_key is None
    pages = _Pages(
        job=job,
        state=state,
        writer=writer,
        store=store,
        has_time=has_time,
        from_start=from_start,
        pending=None if from_start else state.carry_group,
        carry=None if from_start else state.carry_group,
        awaiting=deque(),
    )
    # a page's checkpoint is saved as soon as its last write is acknowledged, even when
    # that write went out in the first batch of the next page
    writer.on_ack = pages.save_acknowledged
    writer.on_refused = pages.refused
    scans = RequestCounter()
    count = 0
    cut_short = False
    while not pages.state.done:
        if stop() or (count and not has_time()):
            break
        start = pages.state.last_key

        def fetch(start: Key | None = start) -> ScanPage:
            return next(
                scan_pages(
                    client,
                    job.source,
                    segment=segment,
                    total_segments=total,
                    start_key=start,
                    limit=job.scan_limit,
                    counter=scans,
                    # only writes are budgeted: the read capacity is not worth the bytes
                    extra={"ReturnConsumedCapacity": "NONE"},
                )
            )

        try:
            page: ScanPage = retrying(
                fetch, backoff=job.backoff, attempts=job.attempts, has_time=has_time
            )
            count += 1
            pages.process(page)
        except (StopRequested, AwsError) as exc:
            if not _for_next_run(exc, has_time):
                raise
            cut_short = True  # this page is redone by the next run
            break
    if not pages.state.done:
        if not cut_short:
            # stopping early: send what is buffered so the newest page state can be saved
            refused = writer.refused
            try:
                writer.flush(everything=True)
            except (StopRequested, AwsError) as exc:
                if not _for_next_run(exc, has_time):
                    raise
            pages.quarantined += writer.refused - refused
        pages.save_acknowledged()
    return SegmentOutcome(
        job.name,
        segment,
        total,
        done=pages.state.done,
        resumed=resumed,
        items_read=pages.read,
        items_written=writer.issued - writer.unsent_puts,
        quarantined=pages.quarantined,
        skipped_existing=writer.skipped_existing,
        deleted=writer.deleted,
        pages=count,
        write_requests=writer.counter.total,  # BatchWriteItem and PutItem calls
        consumed_wcu=writer.consumed,
        last_key=pages.state.last_key,
    )

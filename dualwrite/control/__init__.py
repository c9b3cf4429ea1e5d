"""The control table: phases, checkpoints, quarantine, reconcile results, cutover journal.

Every control item is {pk, sk, data (JSON text), updated_at (epoch s)[, expires_at]}; the
layout of keys is the one place to read to know what dualwrite remembers:

    ROUTE#<route>        PHASE                        phase of the route (phases.py)
    ROUTE#<route>        SEGMENT#<total>#<segment>    backfill checkpoint of one scan segment
    ROUTE#<route>        RECONCILE                    latest reconcile result
    STREAM#<stream arn>  SHARD#<shard id>             replication checkpoint of one shard
    REPLICATE            LEASE                        the local runner applying the streams
                                                      (one at a time: stream_replicator.lease)
    QUARANTINE           <route>#<iso time>#<id>      an item or record that cannot migrate
    QUARANTINE#SEEN      <route>#<seq>#<event id>     a stream record already quarantined
                                                      (redelivery files it once; expires)
    RECONCILE            RUN                          the scheduled reconciler's slice state
    BACKUP               <table>                      the on-demand backup prepare took
    RISK#RETENTION       <iso time>#<route>           a backfill run despite its retention
                                                      estimate (--accept-retention-risk)
    ROUTE#<route>        DIRECTION                    forward / reverse, latest switch
    OWN#<route>          <at>#<id>                    reverse replication's own writes
                                                      (fingerprints; expire)
    FOREIGN#<route>      <key id>                     a write to an old table after cutover
                                                      that reverse replication did not make
    CUTOVER              <iso time>#<action>          cutover / rollback journal entries
    DECOMMISSION         <table>                      what decommission did

Each family's typed records and methods live in their own module; ControlStore combines them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dualwrite.control.directions import DirectionRecords
from dualwrite.control.phases import Phase, PhaseRecords, RoutePhase
from dualwrite.control.quarantine import QuarantineEntry, QuarantineRecords
from dualwrite.control.reconcile_results import ReconcileRecord, ReconcileRecords
from dualwrite.control.segments import SegmentRecords, SegmentState
from dualwrite.control.shards import ShardCheckpoint, ShardRecords
from dualwrite.control.table import PK, SK, ControlTable, Record, control_table_definition, iso

__all__ = [
    "PK",
    "SK",
    "ControlStore",
    "ControlTable",
    "Phase",
    "QuarantineEntry",
    "ReconcileRecord",
    "Record",
    "RoutePhase",
    "SegmentState",
    "ShardCheckpoint",
    "control_table_definition",
    "iso",
]


@dataclass
class ControlStore(
    PhaseRecords,
    SegmentRecords,
    ShardRecords,
    QuarantineRecords,
    ReconcileRecords,
    DirectionRecords,
):
    """Reads and writes the control table. The clock is injected (tests move it)."""

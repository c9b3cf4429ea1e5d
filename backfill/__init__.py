"""The backfill: copy every existing item of a route into its target, through the route's
mapping, as a segmented parallel Scan with checkpoints.

In-process API (the CLI and the demo use it)::

    from backfill.job import run_backfill
    result = run_backfill(migration, clients, store, routes=None, segments=None, workers=None,
                          max_wcu=None, restart=False, on_progress=None, stop=None)

returns a BackfillResult (backfill.results) whose ``to_json()`` is the DESIGN.md shape
``{"routes": [{"route", "items_read", "items_written", "quarantined", "segments",
"segments_resumed", ...}], "duration_s"}``; see `backfill.job`.

At scale the same segment copier runs as Step Functions Distributed Map workers:
`backfill.worker.plan_handler`, `backfill.worker.lambda_handler` and
`backfill.worker.complete_handler`.

Modules: sizing (default segment count), checkpoint (one segment's saved state), retention
(the stream's 24 h guard), writer (batched or put-if-absent target writes, capacity budget),
route (prerequisite checks and the per-route context), segment (the segment copier),
event_sources (enabling the replicator's event source mappings), lifecycle (a route's
phases: plan and complete), results (what a run did), job (the local job: segments on
dualwrite.coordinator's bounded pool).
"""

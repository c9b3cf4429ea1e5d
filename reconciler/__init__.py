"""The reconciler: proves that each target holds exactly what the route's mapping makes of
its source, says where it does not, repairs safely on request, and publishes parity.

Entry points:
- `reconciler.job.run_reconcile(migration, clients, store, ...)`: the in-process API the CLI
  (`dualwrite reconcile`) and the demo call; returns a ReconcileResult (its `to_json()` is
  the DESIGN.md JSON shape).
- `reconciler.handler.lambda_handler`: the same check on a schedule, in time-budgeted slices.

Both run one `reconciler.run.ReconcileRun` (phases, units, merge): the CLI in memory, the
scheduled check a slice at a time, saved in the control table between slices.

Layout: pure cores (`compare`, `conditions`, `digest`, `expect`) and adapters (`spec`,
`reads`, `units`, `passes`, `confirm`, `repair`, `quarantine`, `run`, `job`, `scheduled`,
`handler`).
Nothing here touches boto3 at import time.
"""

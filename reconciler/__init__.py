"""The reconciler: proves that each target holds exactly what the route's mapping makes of
its source, says where it does not, repairs safely on request, and publishes parity.

Entry points:
- `reconciler.job.run_reconcile(migration, clients, store, ...)`: the in-process API the CLI
  (`dualwrite reconcile`) and the demo call; returns the DESIGN.md JSON shape.
- `reconciler.handler.lambda_handler`: the same check on a schedule, in time-budgeted slices.

Layout: pure cores (`compare`, `conditions`, `digest`, `expect`) and adapters (`spec`,
`reads`, `passes`, `confirm`, `repair`, `quarantine`, `job`, `scheduled`, `handler`).
Nothing here touches boto3 at import time.
"""

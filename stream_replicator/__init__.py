"""The stream replicator: applies DynamoDB Streams changes of each route's source to its target
(forward), and after a cutover of each route's target to its source (reverse, DESIGN.md
section 8), following each route's direction.

Modules, from the pure core outwards:
- records:   Lambda-shaped stream records -> Change (pure parsing).
- planning:  classify changes with the route's mapping, coalesce them per target key (pure).
- results:   per-record outcomes, per-route counts, and what of a batch is final (pure).
- apply:     the adapter: routes each record (by table, and by key on a shared target),
             follows the route's direction (directions), and hands the records to
             forward_apply (a plan against the target; target_writes, quarantine) or
             reverse_apply (the ReverseWriter; foreign-write detection); remap carries
             foreign writes forward after a rollback's drain.
- processor: the Powertools batch processor that reports key-ordered partial failures.
- batch:     the inner function shared by the Lambda entry point and the local runner.
- handler:   the Lambda entry point (Powertools Logger and Tracer live only there; EMF
             through dualwrite.metrics).
- events:    GetRecords records -> Lambda event records; shard lineage (pure).
- cursor:    where the local runner stands in one shard, its states and transitions (pure).
- runner:    the local stream runner with DynamoDB Streams semantics (`dualwrite replicate`),
             with runner_streams (which streams, phases, directions, exact drains),
             shard_reader (Streams calls), checkpointer (control table),
             metrics_publisher (PutMetricData), runner_settings and run_summary.
"""

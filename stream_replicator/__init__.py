"""The stream replicator: applies DynamoDB Streams changes of each route's source to its target.

Modules, from the pure core outwards:
- records:   Lambda-shaped stream records -> Change (pure parsing).
- planning:  classify changes with the route's mapping, coalesce them per target key (pure).
- results:   per-record outcomes, per-route counts, and what of a batch is final (pure).
- apply:     the adapter that runs a plan against DynamoDB; its writes (target_writes) and
             its quarantine (quarantine).
- processor: the Powertools batch processor that reports key-ordered partial failures.
- batch:     the inner function shared by the Lambda entry point and the local runner.
- handler:   the Lambda entry point (Powertools Logger and Tracer live only there; EMF
             through dualwrite.metrics).
- events:    GetRecords records -> Lambda event records; shard lineage (pure).
- cursor:    where the local runner stands in one shard, its states and transitions (pure).
- runner:    the local stream runner with DynamoDB Streams semantics (`dualwrite replicate`),
             with its shard_reader (Streams calls), checkpointer (control table),
             metrics_publisher (PutMetricData), runner_settings and run_summary.
"""

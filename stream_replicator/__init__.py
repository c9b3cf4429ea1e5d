"""The stream replicator: applies DynamoDB Streams changes of each route's source to its target.

Modules, from the pure core outwards:
- records:   Lambda-shaped stream records -> Change (pure parsing).
- planning:  classify changes with the route's mapping, coalesce them per target key (pure).
- apply:     the adapter that runs a plan against DynamoDB (quarantine, Query, BatchWriteItem).
- processor: the Powertools batch processor that reports key-ordered partial failures.
- batch:     the inner function shared by the Lambda entry point and the local runner.
- handler:   the Lambda entry point (Powertools Logger, Metrics and Tracer live only there).
- events:    GetRecords records -> Lambda event records; shard lineage (pure).
- runner:    the local stream runner with DynamoDB Streams semantics (`dualwrite replicate`).
"""

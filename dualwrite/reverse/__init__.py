"""Reverse replication after cutover (DESIGN.md section 8): target stream -> inverse mapping
-> source. Pure modules: model (the records), plan (reverse plans of a batch), echo (write
only what differs), direction (which direction applies a record now), foreign (writes to an
old table that reverse replication did not make). The adapter is writer (BatchGetItem,
BatchWriteItem, UpdateItem).

Nothing is imported here: dualwrite.mapping imports the model, and plan imports
dualwrite.mapping.
"""

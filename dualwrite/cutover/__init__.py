"""Cutover, rollback and decommission: gates (gate.py), Lambda re-pointing (functions.py,
repoint.py), the journal (journal.py), old-table removal (decommission.py), and the reads
they rest on (lag.py, writes.py, streams.py, iam.py)."""

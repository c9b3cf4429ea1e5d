"""The reconcile run's merge: each target key counted once (the later judgement wins), the
first samples kept, and the same findings after a round trip through the control table."""

from __future__ import annotations

from dualwrite.control.reconcile_results import MAX_SAMPLES, Counts
from reconciler.compare import EXTRA, MISMATCHED, MISSING, Difference
from reconciler.run import RUN_FORMAT, ReconcileRun, RouteFindings, RunPhase
from reconciler.units import UnitState

ITEM = {"PK": {"S": "SERVER#1"}, "SK": {"S": "METADATA"}, "n": {"N": "1"}}


def diff(kind: str, i: int) -> Difference:
    key = {"PK": {"S": f"SERVER#{i}"}, "SK": {"S": "METADATA"}}
    expected = None if kind == EXTRA else {**key, "n": {"N": "1"}}
    actual = None if kind == MISSING else {**key, "n": {"N": "2"}}
    return Difference("servers", kind, key, None, None, expected, actual)


def test_a_key_judged_twice_counts_once_as_its_later_kind() -> None:
    findings = RouteFindings()
    findings.add(diff(MISSING, 1))
    findings.add(diff(EXTRA, 2))
    findings.add(diff(MISMATCHED, 1))  # the other pass saw key 1 after its source changed
    assert findings.found == Counts(missing=0, extra=1, mismatched=1)
    assert [(s.kind, s.key["PK"]["S"]) for s in findings.samples] == [
        (MISMATCHED, "SERVER#1"),
        (EXTRA, "SERVER#2"),
    ]
    assert [d.kind for d in findings.differences.values()] == [MISMATCHED, EXTRA]


def test_samples_stop_at_the_limit_but_every_difference_counts() -> None:
    findings = RouteFindings()
    for i in range(MAX_SAMPLES + 5):
        findings.add(diff(MISSING, i))
    assert findings.found.missing == MAX_SAMPLES + 5
    assert len(findings.samples) == MAX_SAMPLES
    assert len(findings.differences) == MAX_SAMPLES + 5


def test_a_later_slice_recognises_a_key_it_sampled_before() -> None:
    first = RouteFindings()
    first.add(diff(MISSING, 1))
    later = RouteFindings.from_json(first.to_json())  # another slice: only what was saved
    assert later.differences == {}
    later.add(diff(MISMATCHED, 1))
    later.add(diff(EXTRA, 2))
    assert later.found == Counts(missing=0, extra=1, mismatched=1)
    assert [s.kind for s in later.samples] == [MISMATCHED, EXTRA]


def test_a_saved_run_comes_back_the_same_and_an_older_layout_starts_over() -> None:
    run = ReconcileRun("abc", 10.0, ["servers"], 2, phase=RunPhase.EXACT, slices=3)
    run.units = {"source|S|2|0": UnitState(done=True), "source|S|2|1": UnitState()}
    run.only = {"servers": [3, 7]}
    run.findings_of("servers").add(diff(MISSING, 1))
    data = run.to_json()
    back = ReconcileRun.from_json(data)
    assert back.phase is RunPhase.EXACT and back.only == run.only and back.slices == 3
    assert back.units == run.units and back.units_done == 1 and not back.complete
    assert back.findings_of("servers").found == Counts(missing=1)
    assert data["run_format"] == RUN_FORMAT
    for older in ({**data, "run_format": 1}, {k: v for k, v in data.items() if k != "run_format"}):
        try:
            ReconcileRun.from_json(older)
        except ValueError:
            continue
        raise AssertionError("a run of another layout was accepted")


def test_a_run_is_complete_when_its_units_are_done_and_no_exact_phase_is_due() -> None:
    run = ReconcileRun("abc", 0.0, ["servers"], 1, units={"u": UnitState(done=True)})
    assert run.complete  # digest phase done, no bucket differs
    run.only = {"servers": [1]}
    assert not run.complete  # the exact phase is due
    run.phase = RunPhase.EXACT
    assert run.complete
    exact = ReconcileRun("abc", 0.0, ["servers"], 1, phase=RunPhase.EXACT, exact=True)
    assert exact.exact_buckets("servers") is None and run.exact_buckets("servers") == 1

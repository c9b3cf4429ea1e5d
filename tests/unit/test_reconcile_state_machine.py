"""infra/statemachine/reconcile.asl.yaml as CloudFormation delivers it (valid ASL, every step
retried and caught into the lock's release), and the pure merging of its units' results
(reconciler.sfn_merge). The state machine is executed for real in tests/ministack/."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualwrite.control.reconcile_results import Counts, DifferenceSample
from dualwrite.wire import key_id
from reconciler.compare import MAX_SAMPLES, Tally
from reconciler.digest import Digests
from reconciler.sfn_merge import (
    DIGEST,
    EXACT,
    MAX_JUDGED,
    MAX_UNITS,
    Judgement,
    RunRecord,
    UnitRecord,
    advanced,
    combine,
    default_segments,
    found_by_route,
    missing_units,
)
from reconciler.units import UnitState
from tests.unit.test_infra_template import ACCOUNT, INFRA, check_states, load_template

FAKE = {
    "Partition": "aws",
    "ReconcilePlanFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:plan",
    "ReconcileSegmentFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:segment",
    "ReconcileCombineFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:combine",
    "ReconcileFinishFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:finish",
}


@pytest.fixture(scope="module")
def machine_props() -> dict[str, Any]:
    props: dict[str, Any] = load_template()["Resources"]["ReconcileStateMachine"]["Properties"]
    return props


def definition(props: dict[str, Any], concurrency: int = 16) -> dict[str, Any]:
    text = (INFRA / props["DefinitionUri"]).read_text(encoding="utf-8")
    values = {**FAKE, "ReconcileMaxConcurrency": str(concurrency)}
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    import yaml

    data: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(text)))
    return data


def test_substitutions_match_the_placeholders_and_name_the_handlers(
    machine_props: dict[str, Any],
) -> None:
    text = (INFRA / machine_props["DefinitionUri"]).read_text(encoding="utf-8")
    subs = machine_props["DefinitionSubstitutions"]
    assert (
        set(re.findall(r"\$\{(\w+)\}", text))
        == set(subs)
        == set(FAKE) | {"ReconcileMaxConcurrency"}
    )
    resources = load_template()["Resources"]
    handlers = {
        key: resources[value["Fn::GetAtt"][0]]["Properties"]["Handler"]
        for key, value in subs.items()
        if key.endswith("FunctionArn")
    }
    assert handlers == {
        "ReconcilePlanFunctionArn": "reconciler.segment_task.plan_handler",
        "ReconcileSegmentFunctionArn": "reconciler.segment_task.segment_handler",
        "ReconcileCombineFunctionArn": "reconciler.segment_task.combine_handler",
        "ReconcileFinishFunctionArn": "reconciler.segment_task.finish_handler",
    }


def test_definition_passes_cfn_lints_asl_schema(machine_props: dict[str, Any]) -> None:
    from cfnlint.api import lint

    machine = {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "Definition": definition(machine_props)}
    raw = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Reconcile": {"Type": "AWS::StepFunctions::StateMachine", "Properties": machine}
        },
    }
    assert [str(m) for m in lint(json.dumps(raw))] == []
    broken = copy.deepcopy(raw)
    states = broken["Resources"]["Reconcile"]["Properties"]["Definition"]["States"]
    states["DigestSegments"]["MaxConcurrency"] = "many"
    assert [m.rule.id for m in lint(json.dumps(broken))] == ["E3601"]


def test_two_distributed_maps_and_every_failure_releases_the_lock(
    machine_props: dict[str, Any],
) -> None:
    machine = definition(machine_props, concurrency=7)
    check_states(machine, "reconcile")
    states = machine["States"]
    assert machine["StartAt"] == "Plan"
    maps = {name: s for name, s in states.items() if s["Type"] == "Map"}
    assert set(maps) == {"DigestSegments", "ExactSegments"}
    for name, m in maps.items():
        assert m["ItemProcessor"]["ProcessorConfig"] == {
            "Mode": "DISTRIBUTED",
            "ExecutionType": "STANDARD",
        }
        assert m["MaxConcurrency"] == 7
        assert m.get("ToleratedFailurePercentage", 0) == 0
        assert m["ResultPath"] is None  # results are in the control table, not the payload
        assert m["ItemSelector"]["phase"] == ("digest" if name == "DigestSegments" else "exact")
        assert m["ItemSelector"]["unit.$"] == "$$.Map.Item.Value"
        inner = m["ItemProcessor"]["States"]
        task = inner[m["ItemProcessor"]["StartAt"]]
        assert task["Parameters"]["FunctionName"] == FAKE["ReconcileSegmentFunctionArn"]
        (done,) = inner[task["Next"]]["Choices"]
        assert done["Variable"] == "$.result.done" and done["BooleanEquals"] is True
        assert inner[task["Next"]]["Default"] == m["ItemProcessor"]["StartAt"]
        assert inner[done["Next"]] == {"Type": "Pass", "Result": {}, "End": True}
    # the exact phase runs only when some bucket differs
    choice = states[states["Combine"]["Next"]]
    assert choice["Choices"][0]["Next"] == "ExactSegments" and choice["Default"] == "Finish"
    for name in ("Plan", "DigestSegments", "Combine", "ExactSegments", "Finish"):
        (catch,) = states[name]["Catch"]
        assert catch == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.error",
            "Next": "ReleaseAfterFailure",
        }, name
    release = states["ReleaseAfterFailure"]
    assert release["Parameters"]["FunctionName"] == FAKE["ReconcileFinishFunctionArn"]
    assert release["Parameters"]["Payload"]["failed"] is True
    assert states[release["Next"]]["Type"] == "Fail"
    assert states["Plan"]["Parameters"]["Payload"]["execution.$"] == "$$.Execution.Id"
    assert states["Finish"]["Parameters"]["Payload"]["execution.$"] == "$$.Execution.Id"


# --- merging (pure) ------------------------------------------------------------------------
def key(i: int) -> dict[str, Any]:
    return {"PK": {"S": f"K#{i}"}, "SK": {"S": "M"}}


def item(i: int, v: str = "a") -> dict[str, Any]:
    return {**key(i), "v": {"S": v}}


def unit(phase: str, uid: str, routes: dict[str, Digests], tallies: dict[str, Tally]) -> UnitRecord:
    return UnitRecord(phase, uid, UnitState(done=True, tallies=tallies), routes)


def split(n: int, parts: int, fold: str, buckets: int = 64) -> list[Digests]:
    out = [Digests(buckets) for _ in range(parts)]
    for i in range(n):
        d = out[i % parts]
        (d.expect if fold == "expect" else d.hold)(key(i), item(i))
    return out


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 60), sources=st.integers(1, 5), targets=st.integers(1, 5))
def test_units_cancel_out_however_the_items_are_split(n: int, sources: int, targets: int) -> None:
    records = [
        unit(DIGEST, f"s{i}", {"r": d}, {"r": Tally(source_items=1)})
        for i, d in enumerate(split(n, sources, "expect"))
    ] + [unit(DIGEST, f"t{i}", {"r": d}, {}) for i, d in enumerate(split(n, targets, "hold"))]
    combined = combine(["r"], records, 64)
    assert combined.open == {}
    assert combined.tallies["r"].source_items == sources


def test_a_differing_item_opens_only_its_bucket() -> None:
    expected, held = Digests(64), Digests(64)
    for i in range(40):
        expected.expect(key(i), item(i))
        held.hold(key(i), item(i, "b" if i == 17 else "a"))
    records = [unit(DIGEST, "s", {"r": expected}, {}), unit(DIGEST, "t", {"r": held}, {})]
    combined = combine(["r", "other"], records, 64)
    reference = Digests(64)
    reference.expect(key(17), item(17))
    reference.hold(key(17), item(17, "b"))
    assert combined.open == {"r": tuple(sorted(reference.mismatched()))}
    assert len(combined.open["r"]) == 1


def test_records_survive_json_and_resumes_add_up() -> None:
    first = Digests(64)
    first.expect(key(1), item(1))
    state = UnitState(done=False, tallies={"r": Tally(source_items=1)})
    samples = [{"kind": "missing", "key": {}, "attributes": [], "repaired": False, "route": "r"}]
    one = advanced(None, EXACT, "u", state, {"r": first}, samples * 15)
    back = UnitRecord.from_json(json.loads(json.dumps(one.to_json())))
    assert back.to_json() == one.to_json() and not back.done
    second = Digests(64)
    second.hold(key(1), item(1))
    two = advanced(back, EXACT, "u", UnitState(done=True), {"r": second}, samples * 15)
    assert two.done and two.digests["r"].mismatched() == frozenset()
    assert len(two.samples) == MAX_SAMPLES
    assert missing_units(["u", "v"], [two]) == ["v"]
    assert missing_units(["u"], [one]) == ["u"]  # not done yet


def test_found_counts_come_from_the_exact_phase_tallies() -> None:
    t = Tally()
    t.differences.update(missing=2, extra=1)
    sample = {"kind": "missing", "key": {"PK": {"S": "x"}}, "attributes": [], "repaired": False}
    records = [
        UnitRecord(
            EXACT, "a", UnitState(done=True, tallies={"r": t}), {}, ({**sample, "route": "r"},)
        ),
        UnitRecord(EXACT, "b", UnitState(done=True, tallies={"r": t}), {}, ()),
    ]
    found = found_by_route(["r", "q"], records)
    assert found["r"].counts == Counts(missing=4, extra=2, mismatched=0)
    assert [s.to_json() for s in found["r"].samples] == [sample]
    assert found["q"].counts == Counts()


@pytest.mark.parametrize(
    ("missing_at", "extra_at", "kept"), [(10.0, 20.0, "extra"), (30.0, 20.0, "missing")]
)
def test_a_key_judged_by_two_units_counts_once_as_judged_last(
    missing_at: float, extra_at: float, kept: str
) -> None:
    """The source pass's unit found k missing; the target pass's unit, after k's source was
    deleted, found it extra: one difference, of the kind the later judgement gave it."""
    key = {"PK": {"S": "SERVER#k"}, "SK": {"S": "METADATA"}}
    kid = key_id(key)

    def record(uid: str, kind: str, at: float, other: int) -> UnitRecord:
        t = Tally()
        t.differences.update({kind: 1 + other})
        sample = DifferenceSample(kind, key).to_json()
        others = [Judgement("r", f"other-{uid}-{i}", kind, at) for i in range(other)]
        return advanced(
            None,
            EXACT,
            uid,
            UnitState(done=True, tallies={"r": t}),
            {},
            [{**sample, "route": "r"}],
            [Judgement("r", kid, kind, at), *others],
        )

    records = [record("a", "missing", missing_at, 2), record("b", "extra", extra_at, 0)]
    records = [UnitRecord.from_json(json.loads(json.dumps(r.to_json()))) for r in records]
    found = found_by_route(["r"], records)
    assert found["r"].counts == Counts(
        missing=2 + (kept == "missing"), extra=int(kept == "extra"), mismatched=0
    )
    assert [(s.kind, s.key) for s in found["r"].samples] == [(kept, key)]


def test_a_unit_record_lists_at_most_max_judged_and_reads_one_without_any() -> None:
    many = [Judgement("r", str(i), "missing", 1.0) for i in range(MAX_JUDGED + 5)]
    one = advanced(None, EXACT, "u", UnitState(done=True), {}, [], many[:10])
    two = advanced(one, EXACT, "u", UnitState(done=True), {}, [], many[10:])
    assert two.judged == tuple(many[:MAX_JUDGED])
    data = {k: v for k, v in two.to_json().items() if k != "judged"}  # saved before judged
    assert UnitRecord.from_json(data).judged == ()


def test_run_record_round_trips_and_refuses_another_digest_format() -> None:
    run = RunRecord("id", "arn", ("r",), 4, 12, tallies={"r": Tally(3, 3, 3)}, open={"r": (5,)})
    data = json.loads(json.dumps(run.to_json()))
    assert RunRecord.from_json(data) == run
    assert run.exact_routes == ("r",)
    with pytest.raises(ValueError):
        RunRecord.from_json({**data, "digest_format": 1})


@pytest.mark.parametrize(
    ("items", "tables", "expected"),
    [(0, 3, 4), (1_000_000, 3, 10), (10**9, 3, 10_000), (10**9, 5, MAX_UNITS // 5)],
)
def test_default_segments(items: int, tables: int, expected: int) -> None:
    assert default_segments(items, tables) == expected


def _judged_key(i: str) -> dict[str, Any]:
    return {"PK": {"S": f"K#{i}"}, "SK": {"S": "X"}}


def _exact_record(uid: str, diffs: list[tuple[str, str, dict[str, Any]]], at: float) -> UnitRecord:
    """One unit's exact-phase record, as Steps.run_unit saves it: diffs are (route, kind,
    key), each counted, sampled (up to MAX_SAMPLES) and judged."""
    tallies: dict[str, Tally] = {}
    for route, kind, _ in diffs:
        t = tallies.setdefault(route, Tally())
        t.differences[kind] = t.differences.get(kind, 0) + 1
    samples = [{**DifferenceSample(kind, k).to_json(), "route": r} for r, kind, k in diffs]
    judged = [Judgement(r, key_id(k), kind, at) for r, kind, k in diffs]
    record = advanced(None, EXACT, uid, UnitState(done=True, tallies=tallies), {}, samples, judged)
    return UnitRecord.from_json(json.loads(json.dumps(record.to_json())))


def test_a_key_judged_last_by_a_unit_without_room_for_its_sample_keeps_one() -> None:
    """A target unit of a table two routes share keeps MAX_SAMPLES samples over both routes
    (here all route a's) and lists more judgements: route b's key k, judged extra last, has
    no sample there. The source unit's sample of k (missing, superseded) was dropped and
    nothing replaced it; now k is sampled, of the kind judged last, as `dualwrite
    reconcile` keeps a key's sample, replaced by its later judgement."""
    k = _judged_key("k")
    source_b = _exact_record("source|B|1|0", [("b", "missing", k)], at=10.0)
    target = _exact_record(
        "target|T|1|0",
        [("a", "extra", _judged_key(f"a{i}")) for i in range(MAX_SAMPLES)] + [("b", "extra", k)],
        at=20.0,
    )
    found = found_by_route(["a", "b"], [source_b, target])
    assert found["b"].counts == Counts(missing=0, extra=1, mismatched=0)
    assert [(s.kind, key_id(s.key)) for s in found["b"].samples] == [("extra", key_id(k))]


def test_a_unit_record_saved_before_judgements_keeps_its_count_and_its_sample() -> None:
    """A record with no `judged` (saved by the code before them) cannot be deduplicated, so
    its difference counts; its sample was still dropped for the newer record's judgement of
    the same key: the samples no longer matched the counts."""
    k = _judged_key("k")
    old = _exact_record("source|B|1|0", [("b", "missing", k)], at=10.0).to_json()
    del old["judged"]
    new = _exact_record("target|T|1|0", [("b", "extra", k)], at=20.0)
    found = found_by_route(["b"], [UnitRecord.from_json(old), new])
    assert found["b"].counts == Counts(missing=1, extra=1, mismatched=0)
    assert sorted(s.kind for s in found["b"].samples) == ["extra", "missing"]

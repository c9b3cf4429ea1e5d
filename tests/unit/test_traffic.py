from __future__ import annotations

from dualwrite.seed import MEMBERSHIPS_TABLE, SERVERS_TABLE, generate
from dualwrite.traffic import TrafficPlan
from dualwrite.wire import key_id


def test_traffic_covers_every_kind_of_change_and_tracks_state() -> None:
    data = generate(30, 90, 5)
    plan = TrafficPlan(data, seed=3)
    live = {key_id({"u": m["userId"], "s": m["serverId"]}) for m in data.memberships}
    kinds: set[tuple[str, str]] = set()
    lost_last = 0
    for _ in range(2000):
        for op in plan.next_ops():
            kinds.add((op.table, op.kind))
            if op.table == MEMBERSHIPS_TABLE:
                if op.kind == "put":
                    assert op.item is not None
                    live.add(key_id({"u": op.item["userId"], "s": op.item["serverId"]}))
                else:
                    assert op.key is not None
                    kid = key_id({"u": op.key["userId"], "s": op.key["serverId"]})
                    assert kid in live  # deletes name memberships that exist
                    live.discard(kid)
                    user = op.key["userId"]["S"]
                    if not any(user in k for k in live):
                        lost_last += 1
    assert kinds == {
        (SERVERS_TABLE, "put"),
        (SERVERS_TABLE, "delete"),
        (MEMBERSHIPS_TABLE, "put"),
        (MEMBERSHIPS_TABLE, "delete"),
    }
    assert lost_last > 0
    tracked = {
        key_id({"u": {"S": f"user-{u:06d}"}, "s": {"S": f"srv-{s:06d}"}})
        for u, ss in plan.memberships.items()
        for s in ss
    }
    assert tracked == live


def test_same_seed_same_traffic() -> None:
    data = generate(10, 30, 1)
    a, b = TrafficPlan(data, seed=4), TrafficPlan(data, seed=4)
    assert [a.next_ops() for _ in range(50)] == [b.next_ops() for _ in range(50)]

"""Reverse replication's control records against moto: the direction's optimistic update,
the own-writes journal's time window and expiry, the foreign-write list."""

from __future__ import annotations

from dualwrite.aws.clients import Clients
from dualwrite.control import ControlStore, control_table_definition
from dualwrite.reverse.direction import Direction, Flow, drained, switch
from dualwrite.reverse.foreign import ForeignWrite, OwnWrites, fingerprint


def _store(clients: Clients, now: list[float]) -> ControlStore:
    clients.dynamodb.create_table(**control_table_definition("ctl"))
    return ControlStore(clients.dynamodb, "ctl", clock=lambda: now[0])


def test_direction_defaults_forward_and_updates_only_what_was_read(moto_clients: Clients) -> None:
    store = _store(moto_clients, [1000.0])
    assert store.direction("users") == Direction()
    cut = switch(Direction(), Flow.REVERSE, 1000.0, 3.0)
    assert store.save_direction("users", cut, expected=Direction())
    assert store.direction("users") == cut
    # a replicator that read the state before the cutover must not overwrite the switch
    assert not store.save_direction("users", drained(Direction()), expected=Direction())
    assert store.direction("users") == cut
    assert store.save_direction("users", drained(cut), expected=cut)
    assert store.direction("users").old_drained
    # a stale writer with the pre-drain state loses
    assert not store.save_direction("users", cut, expected=cut)
    assert store.direction("other") == Direction()


def test_own_writes_are_found_by_the_time_they_cover_and_expire(moto_clients: Clients) -> None:
    store = _store(moto_clients, [1000.0])
    early = OwnWrites("users", 100.0, 110.0, frozenset({"a"}))
    late = OwnWrites("users", 5000.0, 5010.0, frozenset({"b"}))
    store.record_own_writes(early)
    store.record_own_writes(late)
    store.record_own_writes(OwnWrites("servers", 105.0, 110.0, frozenset({"c"})))
    assert store.own_writes("users", 105.0, 112.0, span_s=10.0) == [early]
    assert store.own_writes("users", 105.0, 5001.0, span_s=10.0) == [early, late]
    assert store.own_writes("users", 3000.0, 3001.0, span_s=10.0) == []
    item = moto_clients.dynamodb.scan(TableName="ctl")["Items"][0]
    assert float(item["expires_at"]["N"]) > 5010.0


def test_journaling_an_entry_again_replaces_it(moto_clients: Clients) -> None:
    store = _store(moto_clients, [1000.0])
    opened = OwnWrites("users", 100.0, 1000.0, frozenset({"a", "b"}), id="batch1")
    store.record_own_writes(opened)
    store.record_own_writes(OwnWrites("users", 100.0, 1000.0, frozenset({"c"}), id="batch2"))
    narrowed = OwnWrites("users", 100.0, 104.0, opened.fingerprints, id="batch1")
    store.record_own_writes(narrowed)
    found = store.own_writes("users", 100.0, 101.0, span_s=900.0)
    assert sorted(found, key=lambda j: j.id) == [narrowed, found[1]] and found[1].id == "batch2"


def test_a_journal_entry_too_big_for_one_item_is_split(moto_clients: Clients) -> None:
    # an email change of a user with 20,000 memberships: 20,000 writes in one batch
    store = _store(moto_clients, [1000.0])
    prints = frozenset(fingerprint({"id": {"S": f"m{i}"}}, None) for i in range(20_000))
    store.record_own_writes(OwnWrites("users", 100.0, 110.0, prints, id="big"))
    found = store.own_writes("users", 105.0, 106.0, span_s=10.0)
    assert len(found) == 3
    assert {(j.route, j.at, j.until) for j in found} == {("users", 100.0, 110.0)}
    assert frozenset().union(*(j.fingerprints for j in found)) == prints
    items = moto_clients.dynamodb.scan(TableName="ctl")["Items"]
    assert max(len(i["data"]["S"]) for i in items) < 400_000
    # journaled again with its span narrowed, every part is replaced
    store.record_own_writes(OwnWrites("users", 100.0, 104.0, prints, id="big"))
    found = store.own_writes("users", 100.0, 101.0, span_s=10.0)
    assert len(found) == 3 and {j.until for j in found} == {104.0}


def test_foreign_writes_are_listed_once_per_key(moto_clients: Clients) -> None:
    store = _store(moto_clients, [1000.0])
    key = {"id": {"S": "u1"}}
    store.record_foreign([ForeignWrite("users", key, 10.0)])
    store.record_foreign(
        [ForeignWrite("users", key, 20.0), ForeignWrite("users", {"id": {"S": "u2"}}, 30.0)]
    )
    listed = store.foreign_writes("users")
    assert sorted((w.key["id"]["S"], w.at) for w in listed) == [("u1", 10.0), ("u2", 30.0)]
    store.mark_remapped(listed[0], 40.0)
    assert {w.key["id"]["S"]: w.remapped_at for w in store.foreign_writes("users")}["u1"] == 40.0
    # written again after it was carried forward: listed as not re-mapped, first time kept
    store.record_foreign([ForeignWrite("users", key, 50.0)])
    again = {w.key["id"]["S"]: w for w in store.foreign_writes("users")}["u1"]
    assert (again.at, again.remapped_at) == (10.0, None)
    assert store.foreign_writes("servers") == []

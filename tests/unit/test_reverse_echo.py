"""The echo filter: one write per key, only what differs; an echo is no write."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dualwrite.reverse.echo import net_writes
from dualwrite.reverse.model import SourceWrite, WriteKind, kid
from dualwrite.wire import Item, items_equal
from tests.strategies import attributes, values

K = {"id": {"S": "1"}}
KID = kid(K)
CURRENT = {"id": {"S": "1"}, "a": {"N": "1"}, "kept": {"S": "k"}}


def test_an_update_to_what_is_there_is_no_write() -> None:
    netted = net_writes([SourceWrite.update(K, {"a": {"N": "1.0"}})], {KID: CURRENT})
    assert netted.writes == () and netted.unchanged == 1


def test_updates_net_to_one_update_of_only_what_differs() -> None:
    chain = [
        SourceWrite.update(K, {"a": {"N": "2"}, "b": {"S": "x"}}),
        SourceWrite.update(K, {"b": {"S": "y"}}, remove=["a"]),
    ]
    (write,) = net_writes(chain, {KID: CURRENT}).writes
    assert write.kind is WriteKind.UPDATE
    assert write.set == {"b": {"S": "y"}} and write.remove == ("a",)


def test_a_put_or_a_missing_item_nets_to_a_put() -> None:
    (write,) = net_writes([SourceWrite.update(K, {"a": {"N": "3"}})], {}).writes
    assert write.kind is WriteKind.PUT and write.item == {"id": {"S": "1"}, "a": {"N": "3"}}
    chain = [SourceWrite.delete(K), SourceWrite.update(K, {"a": {"N": "3"}})]
    (write,) = net_writes(chain, {KID: CURRENT}).writes
    assert write.kind is WriteKind.PUT and write.item == {"id": {"S": "1"}, "a": {"N": "3"}}


def test_deletes() -> None:
    assert net_writes([SourceWrite.delete(K)], {}).writes == ()
    (write,) = net_writes([SourceWrite.delete(K)], {KID: CURRENT}).writes
    assert write.kind is WriteKind.DELETE
    put_then_delete = [SourceWrite.put(K, CURRENT), SourceWrite.delete(K)]
    assert net_writes(put_then_delete, {}).writes == ()


@given(
    st.lists(st.tuples(st.sampled_from(["put", "update", "delete"]), attributes), max_size=6),
    st.one_of(st.none(), attributes),
    st.dictionaries(st.sampled_from("abc"), values, max_size=2),
)
def test_the_netted_write_leaves_what_the_chain_leaves(
    steps: list[tuple[str, dict[str, Item]]],
    before: dict[str, Item] | None,
    removes: dict[str, Item],
) -> None:
    chain = []
    for kind, attrs in steps:
        if kind == "put":
            chain.append(SourceWrite.put(K, {**attrs, **K}))
        elif kind == "update":
            chain.append(
                SourceWrite.update(K, {k: v for k, v in attrs.items() if k != "id"}, removes)
            )
        else:
            chain.append(SourceWrite.delete(K))
    current = {KID: {**before, **K}} if before is not None else {}
    expected = current.get(KID)
    for w in chain:
        expected = w.apply_to(expected)
    netted = net_writes(chain, current)
    assert len(netted.writes) <= 1
    got = current.get(KID)
    for w in netted.writes:
        got = w.apply_to(got)
    assert (got is None) == (expected is None)
    if got is not None and expected is not None:
        assert items_equal(got, expected)
    if netted.writes and netted.writes[0].kind is WriteKind.UPDATE:
        assert current and all(
            n not in current[KID] or not items_equal({n: current[KID][n]}, {n: v})
            for n, v in netted.writes[0].set.items()
        )

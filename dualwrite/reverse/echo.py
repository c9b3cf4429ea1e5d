"""The echo filter: write only what differs (DESIGN.md section 8). Pure.

A change applied one way shows up in the other direction's stream as an echo. Netting each
key's planned writes against the item read before them makes an echo (and any write that
changes nothing) no write at all, so nothing bounces back and forth and no request is spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dualwrite.reverse.model import KeyId, SourceWrite, WriteKind, leaves
from dualwrite.reverse.plan import update_between
from dualwrite.wire import Item, items_equal


@dataclass(frozen=True)
class Netted:
    """One write per source key that changes something, and how many planned writes
    changed nothing (echoes)."""

    writes: tuple[SourceWrite, ...]
    unchanged: int


def net_writes(planned: Sequence[SourceWrite], current: Mapping[KeyId, Item]) -> Netted:
    """One write per key: the net effect of its planned writes on the item read before
    them (`current`: kid -> item; a key absent from it has no item), or nothing when
    that leaves the item as it was.

    A chain that replaces the whole item (a PUT or DELETE in it), or that starts from no
    item, nets to a PUT (batchable); a chain of UPDATEs on an existing item nets to one
    UPDATE of only the attributes that differ, so attributes the forward mapping drops are
    never rewritten from a stale read."""
    chains: dict[KeyId, list[SourceWrite]] = {}
    for write in planned:
        chain = chains.get(write.kid)
        if chain is None:
            chains[write.kid] = [write]
        else:
            chain.append(write)
    out: list[SourceWrite] = []
    unchanged = 0
    for kid, chain in chains.items():
        before = current.get(kid)
        after = before
        for write in chain:
            after = leaves(write, after)
        first = chain[0]
        if after is None:
            if before is None:
                unchanged += len(chain)
            else:
                out.append(first if len(chain) == 1 else SourceWrite.delete(first.key))
            continue
        if before is not None and items_equal(before, after):
            unchanged += len(chain)
            continue
        replaces = any(w.kind is not WriteKind.UPDATE for w in chain)
        if before is None or replaces:
            # a lone PUT is its own net write (no new record for the commonest case)
            single = len(chain) == 1 and first.kind is WriteKind.PUT
            out.append(first if single else SourceWrite.put(first.key, after))
        else:
            out.append(update_between(first.key, before, after))
    return Netted(tuple(out), unchanged)

"""`foreign`: the writes to an old table after cutover that reverse replication did not make
(DESIGN.md section 8), listed by key; resolving them once an operator has handled them.

A listed foreign write blocks `decommission` (deleting the old table would delete what only
it holds) and is never rewritten by `reconcile --repair`. Once the stray writer is found,
its writes are handled one of two ways, each recorded with a reason: `--carry` applies what
the old table holds now for the key to the new tables through the forward mapping (the old
table's version wins; reverse replication then finds an echo), and `--resolve` records a
decision made by hand (copied over, or judged moot). Either way the entry stays, marked
resolved, and blocks nothing; a later foreign write of the same key lists it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import typer
from rich.markup import escape

from dualwrite.cli.cmd_quarantine import key_text
from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.control import iso
from dualwrite.errors import ConfigError, DualwriteError
from dualwrite.jsondoc import JsonObject
from dualwrite.reverse.foreign import ForeignWrite
from dualwrite.wire import to_lambda_json


def key_words(text: str) -> frozenset[str]:
    """A key as `status` and this command print it ("userId=u1 serverId=s1"), order aside."""
    return frozenset(text.split())


def _text(write: ForeignWrite) -> str:
    return key_text(to_lambda_json(write.key))


def _when(at: float | None) -> str:
    return iso(at)[:19].replace("T", " ") if at is not None else "-"


def chosen(
    listed: Mapping[str, Sequence[ForeignWrite]], keys: Sequence[str], every: bool
) -> list[ForeignWrite]:
    """The unresolved writes named by `keys` (or all of them), over the routes given.
    ConfigError for a key that lists nothing, or one listed on more than one route."""
    open_ = [w for writes in listed.values() for w in writes if not w.resolved]
    if every:
        return open_
    out: list[ForeignWrite] = []
    for text in dict.fromkeys(keys):
        found = [w for w in open_ if key_words(_text(w)) == key_words(text)]
        if not found:
            raise ConfigError(
                f"no unresolved foreign write of key {text!r} (see `dualwrite foreign`; keys as "
                "it prints them, e.g. 'id=srv-1' or 'userId=u1 serverId=s1')"
            )
        if len({w.route for w in found}) > 1:
            raise ConfigError(f"key {text!r} is listed on more than one route: add --route R")
        out.extend(w for w in found if w not in out)
    return out


def foreign(
    ctx: typer.Context,
    route: str | None = typer.Option(None, "--route", help="Only this route's writes."),
    show_all: bool = typer.Option(False, "--all", help="Include resolved writes."),
    resolve: list[str] = typer.Option(
        [],
        "--resolve",
        help="Mark this key's foreign write resolved (as listed, e.g. 'id=srv-1'); repeatable.",
    ),
    resolve_all: bool = typer.Option(
        False, "--resolve-all", help="Mark every unresolved foreign write (of --route) resolved."
    ),
    carry: list[str] = typer.Option(
        [],
        "--carry",
        help="Apply the old table's item of this key to the new table (forward mapping; it "
        "replaces the new table's item), then mark it resolved; repeatable.",
    ),
    carry_all: bool = typer.Option(
        False, "--carry-all", help="--carry every unresolved foreign write (of --route)."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="What was done about them (required to resolve; kept with each)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the writes to old tables made after cutover by anything but reverse replication;
    mark them resolved once handled."""
    app = get(ctx)
    routes = [app.migration.route(route)] if route is not None else list(app.migration.routes)
    actions = [bool(resolve), resolve_all, bool(carry), carry_all]
    if sum(actions) > 1:
        raise ConfigError("use one of --resolve, --resolve-all, --carry, --carry-all")
    note = (reason or "").strip()
    if (resolve or resolve_all) and not note:
        raise ConfigError(
            "resolving a foreign write needs --reason TEXT: what was done about it (carried to "
            "the new table by hand, judged moot, ...); it is kept with the entry"
        )
    store = app.store
    if not app.control_exists:  # before `prepare`: no cutover, so no foreign write either
        if any(actions):
            raise ConfigError(f"nothing to resolve: {app.no_control_note()}")
        app.say(f"note: {app.no_control_note()}")
    listed = {r.name: store.foreign_writes(r.name) if app.control_exists else [] for r in routes}
    if carry or carry_all:
        _carry(app, listed, chosen(listed, carry, carry_all), note, json_out)
        return
    if resolve or resolve_all:
        now = store.now()
        done: list[JsonObject] = []
        for write in chosen(listed, resolve, resolve_all):
            store.resolve_foreign(write, note, now)
            done.append(replace(write, resolved_at=now, resolution=note).to_json())
        left = _unresolved(listed) - len(done)
        if json_out:
            emit_json({"resolved": done, "reason": note, "unresolved": left})
        else:
            app.out.print(f"resolved {len(done)} foreign write(s); {left} unresolved left")
        return
    shown = {
        name: [w for w in writes if show_all or not w.resolved] for name, writes in listed.items()
    }
    unresolved = _unresolved(listed)
    if json_out:
        emit_json(
            {
                "unresolved": unresolved,
                "routes": [
                    {"route": name, "writes": [w.to_json() for w in writes]}
                    for name, writes in shown.items()
                ],
            }
        )
        return
    if not any(shown.values()):
        app.out.print("foreign writes: none " + ("recorded" if show_all else "unresolved"))
        return
    app.out.print(f"foreign writes: {unresolved} unresolved")
    for r in routes:
        for w in shown[r.name]:
            state = (
                f"[green]resolved[/] {_when(w.resolved_at)}: {escape(w.resolution or '')}"
                if w.resolved
                else "[red]unresolved[/]"
            )
            app.out.print(f"\n[bold]{r.name}[/] {escape(_text(w))}  {state}", soft_wrap=True)
            app.out.print(f"  written to {r.source} at {_when(w.at)}", soft_wrap=True)
            if w.remapped_at is not None:
                app.out.print(
                    f"  carried to {r.target} by forward replication at {_when(w.remapped_at)}"
                )
    if unresolved:
        app.out.print()
        app.out.print(
            "carry a key's current item to the new table with `dualwrite foreign --carry KEY` "
            "(or --carry-all); once handled (carried, or judged moot): "
            "`dualwrite foreign --resolve KEY --reason TEXT`",
            markup=False,
        )


def _unresolved(listed: Mapping[str, Sequence[ForeignWrite]]) -> int:
    """How many of the listed writes (of every route listed, not only those acted on) are
    unresolved."""
    return sum(1 for writes in listed.values() for w in writes if not w.resolved)


def _carry(
    app: AppContext,
    listed: Mapping[str, Sequence[ForeignWrite]],
    writes: Sequence[ForeignWrite],
    note: str,
    json_out: bool,
) -> None:
    """--carry: each key's old-table item applied forward, then resolved."""
    from stream_replicator.apply import Replicator
    from stream_replicator.remap import carry_foreign

    store = app.store
    replicator = Replicator(app.migration, app.clients, store)
    carried: list[JsonObject] = []
    quarantined: list[JsonObject] = []
    by_route: dict[str, list[ForeignWrite]] = {}
    for w in writes:
        by_route.setdefault(w.route, []).append(w)
    for name, route_writes in by_route.items():
        route = app.migration.route(name)
        reason = note or f"carried to {route.target} (dualwrite foreign --carry)"
        ctx = replicator.context(route)
        for write, refused in carry_foreign(replicator, ctx, route_writes, lambda: True):
            if refused:  # the mapping quarantined it: `dualwrite quarantine` says why
                quarantined.append(write.to_json())
                continue
            at = store.now()
            store.resolve_foreign(write, reason, at)
            carried.append(replace(write, resolved_at=at, resolution=reason).to_json())
    failed = len(writes) - len(carried) - len(quarantined)
    left = _unresolved(listed) - len(carried)
    if json_out:
        emit_json(
            {"carried": carried, "quarantined": quarantined, "failed": failed, "unresolved": left}
        )
    else:
        app.out.print(
            f"carried {len(carried)} foreign write(s) to the new tables; {left} unresolved"
        )
        if quarantined:
            app.out.print(
                f"{len(quarantined)} could not be mapped and were quarantined instead "
                "(`dualwrite quarantine` says why); they stay unresolved"
            )
        if failed:
            app.out.print(f"{failed} did not land (throttled?): run it again")
    if failed:
        raise DualwriteError(f"{failed} foreign write(s) were not carried; run it again")

"""`quarantine`: what could not be migrated, with its reasons; marking entries resolved.

The cutover gate refuses while any entry is unresolved; `reconcile --repair` resolves the
entries it made moot on its own (see reconciler.quarantine).
"""

from __future__ import annotations

import typer
from rich.markup import escape

from dualwrite.cli.context import emit_json, get
from dualwrite.errors import ConfigError
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import scalar_text


def key_text(key: JsonObject | None) -> str:
    if not key:
        return "-"
    parts = []
    for name in key:  # key order: hash attribute first
        value = key[name]
        try:
            parts.append(f"{name}={scalar_text(value)}")
        except ValueError:
            parts.append(f"{name}=<{next(iter(value))}>")
    return " ".join(parts)


def quarantine(
    ctx: typer.Context,
    route: str | None = typer.Option(None, "--route", help="Only this route's entries."),
    show_all: bool = typer.Option(False, "--all", help="Include resolved entries."),
    resolve: list[str] = typer.Option(
        [], "--resolve", help="Mark this entry (its id) resolved; repeatable."
    ),
    resolve_all: bool = typer.Option(
        False, "--resolve-all", help="Mark every unresolved entry (of --route) resolved."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Why the entries are resolved (required with --resolve-all)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List items that could not be migrated, with their reasons; mark them resolved."""
    from dualwrite.status import quarantine_entry, source_key_names

    app = get(ctx)
    store = app.store
    if route is not None:
        app.migration.route(route)  # exit 2 for an unknown route
    if resolve and resolve_all:
        raise ConfigError("use either --resolve ID or --resolve-all, not both")
    if resolve_all and not (reason and reason.strip()):
        raise ConfigError("--resolve-all needs --reason TEXT (it is kept with each entry)")
    if not app.control_exists:  # before `prepare`: nothing can be quarantined yet
        if resolve or resolve_all:
            raise ConfigError(f"nothing to resolve: {app.no_control_note()}")
        app.say(f"note: {app.no_control_note()}")
        if json_out:
            emit_json({"unresolved": 0, "entries": []})
        else:
            app.out.print("quarantine: nothing " + ("recorded" if show_all else "unresolved"))
        return
    if resolve or resolve_all:
        note = (reason or "").strip() or "resolved by hand"
        if resolve_all:
            ids = [entry.id for entry in store.quarantined(route)]
        else:
            ids = []
            for sk in dict.fromkeys(resolve):
                entry = store.quarantine_entry(sk)
                if entry is None:
                    raise ConfigError(f"no quarantine entry {sk!r} (see `dualwrite quarantine`)")
                if route is not None and entry.route != route:
                    raise ConfigError(
                        f"quarantine entry {sk!r} is route {entry.route}'s, not {route}'s"
                    )
                if not entry.resolved:  # a resolved one keeps its first resolution
                    ids.append(sk)
        for sk in ids:
            store.resolve_quarantine(sk, note)
        left = len(store.quarantined(route))  # of --route, as the listing counts
        if json_out:
            emit_json({"resolved": ids, "reason": note, "unresolved": left})
        else:
            app.out.print(f"resolved {len(ids)} entr{'y' if len(ids) == 1 else 'ies'}; {left} left")
        return
    records = store.quarantined(route, unresolved_only=not show_all)
    names = source_key_names(app.migration, app.clients) if records else {}
    entries = sorted(
        (quarantine_entry(r, names.get(r.route, ())) for r in records),
        key=lambda e: str(e["at"] or ""),
        reverse=True,
    )
    unresolved = sum(1 for e in entries if not e["resolved"])
    if json_out:
        emit_json({"unresolved": unresolved, "entries": entries})
        return
    if not entries:
        app.out.print("quarantine: nothing " + ("recorded" if show_all else "unresolved"))
        return
    # one block per entry: ids and reasons are long, a table would cut them
    app.out.print(f"quarantine: {unresolved} unresolved")
    for e in entries:
        state = (
            f"[green]resolved[/] {e['resolved_at']}: {escape(str(e['resolution']))}"
            if e["resolved"]
            else "[red]unresolved[/]"
        )
        app.out.print(f"\n[bold]{e['id']}[/]  {state}", soft_wrap=True)
        app.out.print(f"  key:    {key_text(e['key'])}", soft_wrap=True, markup=False)
        app.out.print(f"  reason: {e['reason']}", soft_wrap=True, markup=False)
        app.out.print(f"  from:   {e['source'] or '-'} at {e['at']}", soft_wrap=True, markup=False)
    app.out.print()
    app.out.print(
        "resolve with `dualwrite quarantine --resolve ID` or "
        "`dualwrite quarantine --resolve-all --reason TEXT`"
    )

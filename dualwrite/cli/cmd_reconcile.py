"""`reconcile`, `status` and `quarantine`.

`reconcile` exits 0 at parity and 3 on drift (after printing its table or JSON); with
`--repair` the exit code describes the state after the repair. `quarantine` lists what could
not be migrated and marks entries resolved (the cutover gate refuses while any is unresolved);
`reconcile --repair` resolves the entries it made moot on its own (see reconciler.quarantine).
"""

from __future__ import annotations

from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.errors import ConfigError
from dualwrite.wire import scalar_text

DRIFT_EXIT = 3


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile)
    app.command("status")(status)
    app.command("quarantine")(quarantine)


# --- reconcile ------------------------------------------------------------------------------
def reconcile(
    ctx: typer.Context,
    route: str | None = typer.Option(None, "--route", help="Check one route only."),
    repair: bool = typer.Option(
        False, "--repair", help="Fix each confirmed difference with a conditional write."
    ),
    segments: int = typer.Option(4, "--segments", min=1, max=1000, help="Parallel scan segments."),
    settle: float = typer.Option(
        1.0,
        "--settle",
        min=0.0,
        help="Seconds to let in-flight changes land before re-reading a difference.",
    ),
    exact: bool = typer.Option(
        False,
        "--exact",
        help="Check every item with consistent reads, not only the digest buckets that differ.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Prove parity of mapping(source) against the target (exit 3 on drift).

    One scan of each table is folded into per-bucket digests; buckets whose digests differ
    are then checked item by item (consistent BatchGetItem both ways), and every difference
    is re-read on both sides before it counts.
    """
    from reconciler.job import run_reconcile  # the CLI is where components are wired in

    app = get(ctx)
    migration = app.migration
    with Progress(
        TextColumn("[bold]reconciling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items"),
        TimeElapsedColumn(),
        console=app.err,
        disable=json_out or not app.interactive,
        transient=True,
    ) as progress:
        task = progress.add_task("reconcile", total=None)

        def on_progress(advance: int, total: int) -> None:
            done = progress.tasks[0].completed + advance
            progress.update(task, advance=advance, total=max(total, done))

        result = run_reconcile(
            migration,
            app.clients,
            app.store,
            routes=[route] if route else None,
            repair=repair,
            segments=segments,
            settle_s=settle,
            exact=exact,
            on_progress=on_progress,
        )
    for r in result["routes"]:
        if r.get("metrics_error"):
            app.err.print(
                f"warning: {r['route']}: parity metrics not published: {r['metrics_error']}"
            )
    if json_out:
        emit_json(result)
    else:
        print_reconcile(app, result)
    if not result["parity"]:
        raise typer.Exit(DRIFT_EXIT)


def _key_text(key: dict[str, Any] | None) -> str:
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


def print_reconcile(app: AppContext, result: dict[str, Any]) -> None:
    repair = bool(result.get("repair"))
    # one column per route, one row per count: stays readable on an 80-column terminal
    table = Table(title="parity", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    for r in result["routes"]:
        table.add_column(r["route"], justify="right", no_wrap=True)
    rows: list[tuple[str, Any]] = [
        ("source items", lambda r: str(r["source_items"])),
        ("expected target items", lambda r: str(r["expected_target_items"])),
        ("missing", lambda r: _count(r["missing"])),
        ("extra", lambda r: _count(r["extra"])),
        ("mismatched", lambda r: _count(r["mismatched"])),
        ("quarantined", lambda r: str(r["quarantined"])),
    ]
    if repair:
        rows += [
            ("repaired", lambda r: str(r["repaired"])),
            ("settled by replication", lambda r: str(r["settled"])),
        ]
    rows += [
        ("parity %", lambda r: f"{r['parity_percent']:.2f}"),
        ("parity", lambda r: "[green]yes[/]" if r["parity"] else "[red]NO[/]"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in result["routes"]))
    app.out.print(table)
    samples = [(r["route"], d) for r in result["routes"] for d in r.get("differences", [])]
    if samples:
        diffs = Table(title="differences (first of each route)", title_justify="left")
        for col in ("route", "kind", "target key", "attributes", "repaired"):
            diffs.add_column(col)
        for route, d in samples[:30]:
            attrs = d.get("attributes") or []
            text = ", ".join(attrs[:6]) + (f" (+{len(attrs) - 6})" if len(attrs) > 6 else "")
            diffs.add_row(
                route, d["kind"], _key_text(d["key"]), text, "yes" if d.get("repaired") else "-"
            )
        app.out.print(diffs)
    resolved = sum(int(r.get("quarantine_resolved") or 0) for r in result["routes"])
    if resolved:
        app.out.print(f"{resolved} quarantine entr{'y' if resolved == 1 else 'ies'} resolved")
    if result["parity"]:
        app.out.print(f"[green]parity[/]: every route matches ({result['duration_s']:.1f}s)")
    elif repair:
        app.out.print(
            "[red]drift remains[/] after the repair: a concurrent change won a race or an item "
            "could not be repaired safely; run `dualwrite reconcile --repair` again"
        )
    else:
        app.out.print("[red]drift[/]: run `dualwrite reconcile --repair` to fix it")


def _count(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"


# --- status ---------------------------------------------------------------------------------
def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Phases, checkpoints, replication lag, quarantine, last reconcile, parity metrics."""
    from dualwrite.status import gather

    app = get(ctx)
    data = gather(app.migration, app.clients, app.store).to_json()
    if json_out:
        emit_json(data)
        return
    _print_status(app.out, data)


def _age(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    return f"{s // 3600}h ago"


def _clock(iso_time: str | None) -> str:
    """HH:MM:SS of an ISO timestamp, or 'no data'."""
    return iso_time[11:19] if iso_time and len(iso_time) >= 19 else "no data"


def _num(value: Any, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _last_text(last: dict[str, Any] | None) -> str:
    if last is None:
        return "never"
    verdict = "[green]parity[/]" if last.get("parity") else "[red]drift[/]"
    return f"{verdict} {float(last.get('parity_percent', 0)):.2f}% {_age(last.get('age_s'))}"


def _replication_text(rep: dict[str, Any]) -> str:
    shards = rep["shards"]
    if not shards:
        return "not started"
    open_shards = sum(1 for s in shards if not s["done"])
    return f"{rep['records']} records, {open_shards}/{len(shards)} shards open"


def _vertical(title: str, routes: list[dict[str, Any]], rows: list[tuple[str, Any]]) -> Table:
    """One column per route, one row per fact: readable on an 80-column terminal."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    for r in routes:
        table.add_column(r["route"], justify="right")
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in routes))
    return table


def _print_status(out: Console, data: dict[str, Any]) -> None:
    routes = data["routes"]
    out.print(
        _vertical(
            "routes",
            routes,
            [
                ("source", lambda r: r["source"]),
                ("target", lambda r: r["target"]),
                ("phase", lambda r: str(r["phase"])),
                (
                    "backfill segments",
                    lambda r: f"{r['backfill']['segments_done']}/{r['backfill']['segments']}",
                ),
                ("items written", lambda r: str(r["backfill"]["items_written"])),
                ("replication", lambda r: _replication_text(r["replication"])),
                ("lag ms", lambda r: _num(r["replication"]["lag_ms"])),
                (
                    "event source mappings",
                    lambda r: ", ".join(str(m["state"]) for m in r["event_source_mappings"]) or "-",
                ),
                ("quarantined", lambda r: str(r["quarantined"])),
                ("last reconcile", lambda r: _last_text(r["last_reconcile"])),
            ],
        )
    )
    out.print(
        _vertical(
            "parity metrics (CloudWatch, latest minute)",
            routes,
            [
                ("ParityPercent", lambda r: _num(r["metrics"].get("ParityPercent"), "{:.2f}")),
                ("ParityMissing", lambda r: _num(r["metrics"].get("ParityMissing"))),
                ("ParityExtra", lambda r: _num(r["metrics"].get("ParityExtra"))),
                ("ParityMismatched", lambda r: _num(r["metrics"].get("ParityMismatched"))),
                ("ReplicationLagMs", lambda r: _num(r["metrics"].get("ReplicationLagMs"))),
                ("TtlDeletes", lambda r: _num(r["metrics"].get("TtlDeletes"))),
                ("at (UTC)", lambda r: _clock(r["metrics_at"].get("ParityPercent"))),
            ],
        )
    )
    if data["quarantine"]:
        q = Table(
            title=f"quarantine: {data['quarantined']} unresolved (latest)", title_justify="left"
        )
        for col in ("route", "key", "reason", "at"):
            q.add_column(col)
        for e in data["quarantine"]:
            when = str(e["at"] or "-")[:19].replace("T", " ")
            q.add_row(str(e["route"]), _key_text(e["key"]), str(e["reason"]), when)
        out.print(q)
    else:
        out.print("quarantine: nothing unresolved")
    for note in data.get("notes", []):
        out.print(f"note: {note}")


# --- quarantine -----------------------------------------------------------------------------
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
    if resolve or resolve_all:
        note = (reason or "").strip() or "resolved by hand"
        if resolve_all:
            ids = [rec.sk for rec in store.quarantined(route)]
        else:
            ids = list(dict.fromkeys(resolve))
            for sk in ids:
                rec = store.get("QUARANTINE", sk)
                if rec is None:
                    raise ConfigError(f"no quarantine entry {sk!r} (see `dualwrite quarantine`)")
        for sk in ids:
            store.resolve_quarantine(sk, note)
        left = len(store.quarantined())
        if json_out:
            emit_json({"resolved": ids, "reason": note, "unresolved": left})
        else:
            app.out.print(f"resolved {len(ids)} entr{'y' if len(ids) == 1 else 'ies'}; {left} left")
        return
    records = store.quarantined(route, unresolved_only=not show_all)
    names = source_key_names(app.migration, app.clients) if records else {}
    entries = sorted(
        (quarantine_entry(r, names.get(str(r.data.get("route")), ())) for r in records),
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
            f"[green]resolved[/] {e['resolved_at']}: {e['resolution']}"
            if e["resolved"]
            else "[red]unresolved[/]"
        )
        app.out.print(f"\n[bold]{e['id']}[/]  {state}", soft_wrap=True)
        app.out.print(f"  key:    {_key_text(e['key'])}", soft_wrap=True)
        app.out.print(f"  reason: {e['reason']}", soft_wrap=True, markup=False)
        app.out.print(f"  from:   {e['source'] or '-'} at {e['at']}", soft_wrap=True)
    app.out.print()
    app.out.print(
        "resolve with `dualwrite quarantine --resolve ID` or "
        "`dualwrite quarantine --resolve-all --reason TEXT`"
    )

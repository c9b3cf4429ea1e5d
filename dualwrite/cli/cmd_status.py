"""`status`: phases, checkpoints, replication lag, quarantine, last reconcile, parity metrics
(gathered by dualwrite.status)."""

from __future__ import annotations

from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from dualwrite.cli.cmd_quarantine import key_text
from dualwrite.cli.context import emit_json, get
from dualwrite.control import iso
from dualwrite.jsondoc import JsonObject


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


def _last_text(last: JsonObject | None) -> str:
    if last is None:
        return "never"
    verdict = "[green]parity[/]" if last.get("parity") else "[red]drift[/]"
    return f"{verdict} {float(last.get('parity_percent', 0)):.2f}% {_age(last.get('age_s'))}"


def _replication_text(rep: JsonObject, decommissioned: bool = False, missing: bool = False) -> str:
    shards = rep["shards"]
    if not shards:
        if decommissioned:
            return "the source is decommissioned"
        return "the source table does not exist" if missing else "not started"
    open_shards = sum(1 for s in shards if not s["done"])
    return f"{rep['records']} records, {open_shards}/{len(shards)} shards open"


def _reverse_text(r: JsonObject) -> str:
    rep = r.get("reverse_replication")
    if not rep:
        return "-"
    lag = rep.get("lag_ms")
    return _replication_text(rep) + (f", lag {_num(lag)} ms" if lag is not None else "")


def _source_text(r: JsonObject) -> str:
    gone = r.get("source_decommissioned_at")
    if not gone:
        # a typo in the migration file, or a table deleted by hand: said here, not only in
        # --json's source_exists
        return (
            str(r["source"]) if r.get("source_exists", True) else f"{r['source']} [red](missing)[/]"
        )
    when = str(gone)[:19].replace("T", " ") if str(gone)[:1].isdigit() else str(gone)
    return f"{r['source']} (decommissioned {when})"


def _direction_text(r: JsonObject) -> str:
    text = str(r["direction"])
    if r.get("source_decommissioned_at"):  # nothing drains into a table that is gone
        return text
    if r.get("switching_back_at") is not None:  # a rollback is being made (or was killed)
        return f"{text} (rolling back: run dualwrite rollback if none is running)"
    if r.get("cutting_over_at") is not None:  # a cutover is being made (or was killed)
        return f"{text} (cutting over: run dualwrite cutover if none is running)"
    return f"{text} (draining)" if r.get("drain_pending") else text


def _print_foreign(out: Console, routes: list[JsonObject]) -> None:
    """The foreign-written keys (writes to an old table nobody re-pointed): a few a route."""
    if any(r["foreign_writes"] for r in routes):
        out.print(
            "foreign writes block decommission until resolved: `dualwrite foreign` lists them; "
            "`dualwrite foreign --resolve KEY --reason TEXT` once handled"
        )
    for r in routes:
        if not r["foreign_writes"]:
            continue
        listed = r.get("foreign_keys") or []
        table = Table(
            title=f"foreign writes on {r['route']} ({r['source']}): {r['foreign_writes']} key(s)"
            + (f", {len(listed)} listed" if len(listed) < r["foreign_writes"] else ""),
            title_justify="left",
        )
        for col in ("key", "at", "re-mapped"):
            table.add_column(col)
        for w in listed:
            at = w.get("at")
            when = iso(float(at))[:19].replace("T", " ") if at is not None else "-"
            table.add_row(key_text(w.get("key")), when, "yes" if w.get("remapped_at") else "-")
        out.print(table)


def _vertical(title: str, routes: list[JsonObject], rows: list[tuple[str, Any]]) -> Table:
    """One column per route, one row per fact: readable on an 80-column terminal."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True)
    for r in routes:
        table.add_column(r["route"], justify="right")
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in routes))
    return table


def _print_status(out: Console, data: JsonObject) -> None:
    routes = data["routes"]
    out.print(
        _vertical(
            "routes",
            routes,
            [
                ("source", _source_text),
                ("target", lambda r: r["target"]),
                ("phase", lambda r: str(r["phase"])),
                (
                    "backfill segments",
                    lambda r: f"{r['backfill']['segments_done']}/{r['backfill']['segments']}",
                ),
                ("items written", lambda r: str(r["backfill"]["items_written"])),
                (
                    "replication",
                    lambda r: _replication_text(
                        r["replication"],
                        bool(r.get("source_decommissioned_at")),
                        r.get("source_exists") is False,
                    ),
                ),
                ("lag ms", lambda r: _num(r["replication"]["lag_ms"])),
                (
                    "event source mappings",
                    lambda r: ", ".join(str(m["state"]) for m in r["event_source_mappings"]) or "-",
                ),
                ("quarantined", lambda r: str(r["quarantined"])),
                ("last reconcile", lambda r: _last_text(r["last_reconcile"])),
                ("direction", _direction_text),
                ("reverse replication", _reverse_text),
                ("foreign writes", lambda r: str(r["foreign_writes"])),
            ],
        )
    )
    _print_foreign(out, routes)
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
            q.add_row(str(e["route"]), key_text(e["key"]), str(e["reason"]), when)
        out.print(q)
    else:
        out.print("quarantine: nothing unresolved")
    for note in data.get("notes", []):
        out.print(f"note: {note}")

"""`preview`: N source items of each route beside their target items (or quarantine
reasons) and whether each round-trips through the inverse. Reads only; prints to stdout
only (items are never logged)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from dualwrite.cli.context import AppContext, emit_json, get
from dualwrite.preview import RoutePreview, Sample, preview_routes
from dualwrite.wire import Item, to_lambda_json

#: a value longer than this is cut in the human view (--json prints it whole)
VALUE_WIDTH = 48


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)


def preview(
    ctx: typer.Context,
    route: str | None = typer.Option(None, "--route", help="Preview one route only."),
    limit: int = typer.Option(5, "--limit", min=1, max=1000, help="Source items per route."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show what each route's mapping makes of a few source items. Writes nothing."""
    app = get(ctx)
    previews = preview_routes(app.migration, app.clients.dynamodb, route, limit)
    if json_out:
        emit_json({"routes": [p.to_json() for p in previews]})
        return
    for p in previews:
        _print_route(app, p)


def _value(value: Any) -> str:
    text = json.dumps(to_lambda_json(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def _item_text(item: Item, key: tuple[str, ...]) -> Text:
    """One attribute a line, the key first."""
    out = Text()
    names = [n for n in key if n in item] + [n for n in item if n not in key]
    for i, name in enumerate(names):
        if i:
            out.append("\n")
        out.append(name, style="bold cyan" if name in key else "bold")
        out.append(" " + _value(item[name]))
    return out


def _verdict(sample: Sample) -> Text:
    if sample.reason is not None:
        return Text("quarantined", style="yellow")
    if sample.round_trip is None:
        return Text("no inverse", style="dim")
    if sample.round_trip:
        return Text("yes", style="green")
    return Text(f"NO: {sample.round_trip_problem}", style="red")


def _print_route(app: AppContext, p: RoutePreview) -> None:
    table = Table(
        title=f"{p.route}: {p.source} -> {p.target} ({p.mapping})",
        title_justify="left",
        box=box.SIMPLE_HEAVY,
        show_lines=True,
    )
    table.add_column("source item", overflow="fold")
    table.add_column("target item", overflow="fold")
    table.add_column("round trip", overflow="fold")
    for sample in p.samples:
        if sample.target is not None:
            target = _item_text(sample.target, p.target_key)
        else:
            target = Text(f"quarantined: {sample.reason}", style="yellow")
        table.add_row(_item_text(sample.source, p.source_key), target, _verdict(sample))
    if not p.samples:
        table.add_row(Text(f"{p.source} is empty", style="dim"), "", "")
    app.out.print(table)

"""``adwatch runs``: crawl runs and their outcomes."""

from __future__ import annotations

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from adwatch.services.runs import list_runs

app = typer.Typer(help="Crawl runs and their outcomes.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, limit: int = typer.Option(20, min=1)) -> None:
    """The latest crawl runs of your cases (every case, for legal officers)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory() as session:
        runs = list_runs(session, access, limit=limit)
    table = Table(
        "run", "case", "site", "authorisation", "started", "by", "status", "pages", "ads",
        "problems",
    )  # fmt: skip
    for run in runs:
        status = f"{run.status}: {run.stop_reason}" if run.stop_reason else run.status
        table.add_row(
            str(run.run_id),
            run.case,
            run.site,
            str(run.authorisation_id),
            f"{run.started_at:%Y-%m-%d %H:%M}",
            run.started_by,
            status,
            str(run.pages),
            str(run.ads),
            str(run.problems),
        )
    context.console.print(table)
    if not runs:
        context.console.print("no crawl runs")

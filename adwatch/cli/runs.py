"""``adwatch runs``: crawl runs and their outcomes."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import select

from adwatch.cli.app_context import AppContext
from storage.models import CrawlRun

app = typer.Typer(help="Crawl runs and their outcomes.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, limit: int = typer.Option(20, min=1)) -> None:
    """The latest crawl runs."""
    context: AppContext = ctx.obj
    table = Table("run", "site", "authorisation", "started", "status", "pages", "ads", "problems")
    with context.session_factory() as session:
        rows = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(limit))
        for run in rows:
            table.add_row(
                str(run.id),
                run.site.key,
                str(run.authorisation_id),
                f"{run.started_at:%Y-%m-%d %H:%M}",
                run.status,
                str(run.pages_fetched),
                str(run.ads_captured),
                str(len(run.problems)),
            )
    context.console.print(table)

"""``adwatch db``: the database schema."""

from __future__ import annotations

import typer

from adwatch.cli.app_context import AppContext
from storage.db import current_revision, head_revision, upgrade_database

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply all migrations to the configured database (creates a SQLite file if needed)."""
    context: AppContext = ctx.obj
    url = context.settings.resolved_database_url
    context.settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(url)
    context.console.print(
        f"database at revision [bold]{current_revision(context.engine)}[/bold] "
        f"({context.engine.url.render_as_string(hide_password=True)})"
    )


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database's migration revision and the newest one this adwatch ships."""
    context: AppContext = ctx.obj
    now = current_revision(context.engine)
    head = head_revision(context.settings.resolved_database_url)
    state = "up to date" if now == head else "needs `adwatch db upgrade`"
    context.console.print(f"database: {now or 'not initialised'}; adwatch: {head} — {state}")

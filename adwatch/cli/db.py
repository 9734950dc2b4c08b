"""``adwatch db``: the database schema, and the application's role on PostgreSQL."""

from __future__ import annotations

import typer
from rich.text import Text

from adwatch.cli.app_context import AppContext
from storage.db import current_revision, head_revision, upgrade_database
from storage.privileges import secure_application_role

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply all migrations (creates a SQLite file if needed).

    Migrations run as ADWATCH_MIGRATION_DATABASE_URL (the schema owner; default
    ADWATCH_DATABASE_URL). On PostgreSQL, when the application connects as another role,
    that role is granted what it needs and no more: it may only read and append audit
    entries. A warning follows when the application's role could still alter or empty
    the audit log.
    """
    context: AppContext = ctx.obj
    settings = context.settings
    context.settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_migration_database_url)
    setup = secure_application_role(
        settings.resolved_migration_database_url, settings.resolved_database_url
    )
    context.console.print(
        f"database at revision [bold]{current_revision(context.engine)}[/bold] "
        f"({context.engine.url.render_as_string(hide_password=True)})"
    )
    if setup.granted:
        context.console.print(
            Text(
                f"granted {setup.application_role} read and write on the tables, read and "
                "append only on audit_entries"
            )
        )
    for note in setup.notes:
        context.console.print(Text(f"note: {note}"))
    for warning in setup.warnings:
        context.error_console.print(Text(f"warning: {warning}", style="yellow"))


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database's migration revision and the newest one this adwatch ships."""
    context: AppContext = ctx.obj
    now = current_revision(context.engine)
    head = head_revision(context.settings.resolved_database_url)
    state = "up to date" if now == head else "needs `adwatch db upgrade`"
    context.console.print(f"database: {now or 'not initialised'}; adwatch: {head} — {state}")

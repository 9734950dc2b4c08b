"""``adwatch user``: administrators manage who may use adwatch, and in which role."""

from __future__ import annotations

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from legal_policy.registry import (
    add_user,
    bootstrap_administrator,
    list_users,
    registry_is_empty,
    set_user_disabled,
)
from legal_policy.roles import PERSON_ROLES, Role

app = typer.Typer(help="Users and their roles (administrators).", no_args_is_help=True)

ROLES_HELP = ", ".join(role.value for role in PERSON_ROLES)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Login-style name: lowercase letters, digits, . _ -"),
    role: str = typer.Option(..., help=f"One of: {ROLES_HELP}."),
) -> None:
    """Add a user. On an empty registry the first administrator needs no --as (bootstrap)."""
    context: AppContext = ctx.obj
    with context.session_factory.begin() as session:
        bootstrap = registry_is_empty(session) and role.strip().lower() == Role.ADMINISTRATOR
    if bootstrap:
        with context.session_factory.begin() as session:
            bootstrap_administrator(session, name, context.via)
        context.console.print(
            f"added [bold]{name}[/bold] as the first administrator (bootstrap, audited)"
        )
        return
    access = context.access()
    with context.session_factory.begin() as session:
        add_user(session, access, name, role)
    context.console.print(f"added user [bold]{name}[/bold] ({role})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Users with role, state and cases (administrators and legal officers)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory() as session:
        users = list_users(session, access)
    table = Table("user", "role", "state", "cases", "added")
    for user in users:
        state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
        table.add_row(
            user.name,
            user.role,
            state,
            ", ".join(user.cases) or "—",
            f"{user.created_at:%Y-%m-%d} by {user.created_by}",
        )
    context.console.print(table)


@app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Disable a user: they can no longer act (their past actions stay in the audit log)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        set_user_disabled(session, access, name, disabled=True)
    context.console.print(f"user {name} disabled")


@app.command("enable")
def enable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Enable a disabled user again."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        set_user_disabled(session, access, name, disabled=False)
    context.console.print(f"user {name} enabled")

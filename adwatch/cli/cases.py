"""``adwatch case``: cases, their members (need-to-know) and combinations of cases."""

from __future__ import annotations

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from adwatch.services.combination import combine_and_relink, separate_and_relink
from legal_policy.registry import add_case, add_member, list_cases, remove_member

app = typer.Typer(help="Cases, members and combinations.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="Case number, e.g. 2026-017."),
    title: str = typer.Option("", help="A short title (no personal data)."),
) -> None:
    """Register a case (administrators)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        add_case(session, access, number, title)
    context.console.print(f"added case [bold]{number}[/bold]")


@app.command("add-member")
def add_member_(
    ctx: typer.Context, number: str = typer.Argument(...), user: str = typer.Argument(...)
) -> None:
    """Give a user need-to-know of a case (administrators)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        add_member(session, access, number, user)
    context.console.print(f"{user} is now a member of case {number}")


@app.command("remove-member")
def remove_member_(
    ctx: typer.Context, number: str = typer.Argument(...), user: str = typer.Argument(...)
) -> None:
    """End a user's need-to-know of a case (administrators)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        remove_member(session, access, number, user)
    context.console.print(f"{user} is no longer a member of case {number}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Cases with members and combinations (your own cases, unless you oversee all)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory() as session:
        cases = list_cases(session, access)
    table = Table("case", "title", "state", "members", "combined with")
    for case in cases:
        state = f"closed {case.closed_at:%Y-%m-%d}" if case.closed_at else "open"
        table.add_row(
            case.number,
            case.title or "—",
            state,
            ", ".join(case.members) or "—",
            ", ".join(case.combined_with) or "—",
        )
    context.console.print(table)
    if not cases:
        context.console.print("no cases")


@app.command("combine")
def combine(
    ctx: typer.Context,
    case_a: str = typer.Argument(...),
    case_b: str = typer.Argument(...),
    reason: str = typer.Option(..., help="Why the data of both cases may be combined."),
) -> None:
    """Let the ads of two cases link into shared profiles (legal officers; LED art. 25)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        outcome = combine_and_relink(
            session,
            access,
            case_a,
            case_b,
            reason,
            context.settings.default_phone_region,
            context.link_snapshots(),
        )
    context.console.print(
        f"cases {case_a} and {case_b} combined; profiles merged: {outcome.profiles_merged}, "
        f"ads relinked: {outcome.ads_moved}"
    )


@app.command("separate")
def separate(
    ctx: typer.Context,
    case_a: str = typer.Argument(...),
    case_b: str = typer.Argument(...),
    reason: str = typer.Option(..., help="Why the combination ends."),
) -> None:
    """Reverse a combination: no profile spans both cases afterwards (legal officers)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        outcome = separate_and_relink(
            session,
            access,
            case_a,
            case_b,
            reason,
            context.settings.default_phone_region,
            context.link_snapshots(),
        )
    context.console.print(
        f"cases {case_a} and {case_b} separated; profiles split: {outcome.profiles_split}, "
        f"ads relinked: {outcome.ads_moved}"
    )

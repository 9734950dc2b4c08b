"""``adwatch audit``: legal officers verify the tamper-evident audit log."""

from __future__ import annotations

import typer

from adwatch.cli.app_context import AppContext
from legal_policy.audit_log import verify_stored_chain

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command("verify")
def verify(
    ctx: typer.Context,
    head: str | None = typer.Option(
        None, help="A head hash exported earlier; also detects truncation after it."
    ),
) -> None:
    """Check the whole chain: edits, deletions, reordering (and truncation with --head)."""
    context: AppContext = ctx.obj
    with context.session_factory() as session:
        result = verify_stored_chain(session, head)
    if result.ok:
        context.console.print(
            f"[green]audit log intact[/green]: {result.entries_checked} entries, "
            f"head {result.head_hash}"
        )
        return
    for problem in result.problems:
        context.error_console.print(f"[red]{problem}[/red]")
    context.error_console.print(
        f"[bold red]audit log verification FAILED[/bold red] ({len(result.problems)} problems)"
    )
    raise typer.Exit(1)


@app.command("head")
def head(ctx: typer.Context) -> None:
    """Print the chain's head hash, to keep outside the system (e.g. in the case file)."""
    context: AppContext = ctx.obj
    with context.session_factory() as session:
        result = verify_stored_chain(session)
    context.console.print(f"{result.head_hash}  ({result.entries_checked} entries)")

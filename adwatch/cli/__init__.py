"""The ``adwatch`` command line: one Typer sub-app per domain, thin over the services."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from adwatch.cli import audit, authorisation, crawl, db, demo, match, profiles, runs
from adwatch.cli.app_context import AppContext
from adwatch.cli.errors import exit_code_for
from adwatch.settings import Settings

app = typer.Typer(
    name="adwatch",
    help="Compliance-bounded ad crawler and ad matcher for human-trafficking investigations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Settings come from ADWATCH_* environment variables (see README)."""
    if ctx.obj is None:
        ctx.obj = AppContext(Settings())
    ctx.call_on_close(ctx.obj.close)


app.add_typer(db.app, name="db")
app.add_typer(authorisation.app, name="authorisation")
app.add_typer(profiles.app, name="profiles")
app.add_typer(runs.app, name="runs")
app.add_typer(audit.app, name="audit")
app.command("crawl")(crawl.crawl_command)
app.command("demo-site")(demo.demo_site_command)
app.command("demo")(demo.demo_command)
app.command("match")(match.match_command)


def run(argv: list[str] | None = None, obj: AppContext | None = None) -> int:
    """Run the CLI and map domain errors to messages and exit codes; returns the exit code."""
    errors = obj.error_console if obj is not None else Console(stderr=True)
    try:
        result = app(args=argv, obj=obj, standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except typer.Abort:
        errors.print("[red]aborted[/red]")
        return 1
    except Exception as exc:  # mapped below; anything unknown is re-raised with its traceback
        # Typer vendors Click; its usage errors know how to show themselves.
        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
            exc.show()
            return int(getattr(exc, "exit_code", 2))
        code = exit_code_for(exc)
        if code is None:
            raise
        errors.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        return code
    # Without standalone mode Click returns the code of `typer.Exit` instead of exiting.
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())

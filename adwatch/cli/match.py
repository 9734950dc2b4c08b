"""``adwatch match``: link a JSON-lines export offline, with no database."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from adwatch.cli.app_context import AppContext
from adwatch.cli.render import print_match_summary
from adwatch.services.offline_match import NothingToLink, match_jsonl


def match_command(
    ctx: typer.Context,
    input_path: Path = typer.Option(
        ..., "--input", "-i", help="ads.jsonl: one ad per line; image paths relative to it."
    ),
    output_path: Path = typer.Option(
        ..., "--output", "-o", help="profiles.jsonl: one line per linked ad with its evidence."
    ),
    workers: int = typer.Option(
        0, min=0, help="Processes for image hashing (0: one per core, at most 4)."
    ),
) -> None:
    """Link ads from an export into candidate profiles; bad lines are reported and skipped.

    Times without an offset are read in ADWATCH_TIMEZONE. Exits with 2 when no line could
    be read (the output is then not written) or when the output is the input.
    """
    context: AppContext = ctx.obj
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=context.error_console,
        transient=True,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        try:
            outcome = match_jsonl(
                input_path,
                output_path,
                default_region=context.settings.default_phone_region,
                timezone=context.settings.zone,
                workers=workers or None,
                on_progress=on_progress,
            )
        except NothingToLink as nothing:
            progress.stop()
            print_match_summary(context.console, nothing.outcome, "not written")
            raise
    print_match_summary(context.console, outcome, str(output_path))
    if outcome.mostly_skipped:
        context.error_console.print(
            f"[bold red]WARNING: {len(outcome.problems)} of {outcome.lines_read} lines "
            f"({outcome.skipped_share:.0%}) were skipped; the profiles link only the ads "
            "that could be read. Check the input against the format in the README.[/]"
        )

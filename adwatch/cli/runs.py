"""``adwatch runs``: crawl runs and their outcomes."""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from adwatch.services.runs import RunDetail, list_runs, show_run

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


@app.command("show")
def show(ctx: typer.Context, run_id: int = typer.Argument(..., metavar="RUN")) -> None:
    """One crawl run: outcome, counts, problems by kind, log, and its WARC files."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory() as session:
        run = show_run(session, access, run_id, log_dir=context.settings.log_dir)
    _print_run(context, run)


def _print_run(context: AppContext, run: RunDetail) -> None:
    status = f"{run.status}: {run.stop_reason}" if run.stop_reason else run.status
    finished = f"{run.finished_at:%Y-%m-%d %H:%M:%S} UTC" if run.finished_at else "(running)"
    if run.log_file is not None:
        log = str(run.log_file)
    elif run.logs_purged_at is not None:
        log = f"purged {run.logs_purged_at:%Y-%m-%d}"
    else:
        log = "(none)"
    table = Table(title=f"crawl run {run.run_id}", show_header=False)
    for label, value in (
        ("case", run.case),
        ("site", run.site),
        ("authorisation", f"{run.authorisation_id} ({run.legal_basis})"),
        ("started by", run.started_by),
        ("adwatch version", run.software_version),
        ("status", status),
        ("started", f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("finished", finished),
        ("duration", _duration(run.duration)),
        ("pages fetched", run.pages_fetched),
        ("ads captured", run.ads_captured),
        ("ads unchanged since last capture", run.ads_unchanged),
        ("ads below the indicator threshold (not kept)", run.ads_below_threshold),
        ("images stored", run.images_stored),
        ("requests refused", run.requests_refused),
        ("problems", _problems(run.problems_by_kind)),
        ("log", log),
    ):
        table.add_row(label, str(value))
    context.console.print(table)
    files = Table("WARC file", "records", "bytes", "SHA-256", "closed", "expires", title="evidence")
    for warc in run.warc_files:
        files.add_row(
            warc.path,
            str(warc.records),
            str(warc.size),
            warc.sha256 or "(not closed)",
            f"{warc.closed_at:%Y-%m-%d %H:%M}" if warc.closed_at else "-",
            f"{warc.expires_at:%Y-%m-%d}",
        )
    if run.warc_files:
        context.console.print(files)
    else:
        context.console.print("no WARC files (no ad was kept, or they were purged)")


def _duration(duration: timedelta | None) -> str:
    if duration is None:
        return "-"
    seconds = int(duration.total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m {seconds % 60:02d}s"


def _problems(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in by_kind.items()) or "none"

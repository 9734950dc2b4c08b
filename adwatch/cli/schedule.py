"""``adwatch schedule``: recurring crawls under an authorisation, fired by ``adwatch serve``."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from adwatch.services.scheduling import (
    ScheduleSummary,
    add_schedule,
    list_schedules,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    timing_of,
)
from storage.types import utcnow

app = typer.Typer(
    help="Recurring crawls; they fire while `adwatch serve` runs.", no_args_is_help=True
)


@app.command("add")
def add(
    ctx: typer.Context,
    authorisation_id: int = typer.Option(..., "--authorisation", help="Authorisation id."),
    site: str = typer.Option(..., help="Site profile key; the authorisation must name it."),
    cron: str | None = typer.Option(
        None,
        metavar="EXPR",
        help="Five crontab fields in UTC, e.g. '30 2 * * 1-5' (02:30 on weekdays; 0 and 7 "
        "are Sunday).",
    ),
    every: str | None = typer.Option(
        None,
        metavar="INTERVAL",
        help="An interval from now on: 90s, 15m, 6h, 1d (at least 1 minute).",
    ),
) -> None:
    """Crawl a site on a schedule, as you, while its authorisation allows (investigators).

    Each firing checks the authorisation again; when it is revoked or expires, or the case
    closes, the schedule stops and says why.
    """
    context: AppContext = ctx.obj
    access = context.access()
    now = utcnow()
    with context.session_factory.begin() as session:
        schedule = add_schedule(
            session,
            access,
            authorisation_id=authorisation_id,
            site_key=site,
            cron=cron,
            every=every,
            site_profiles_dir=context.settings.resolved_site_profiles_dir,
            now=now,
        )
        timing = timing_of(schedule)
        schedule_id = schedule.id
    first = timing.first_after(now, now)
    context.console.print(
        f"added schedule [bold]{schedule_id}[/bold]: {timing.describe()} of site {site} under "
        f"authorisation {authorisation_id}; first crawl at {_when(first)} if `adwatch serve` "
        "is running"
    )


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Schedules of your cases (every case, for legal officers), with their last and next
    crawl."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory() as session:
        schedules = list_schedules(session, access)
    table = Table(
        "schedule", "case", "authorisation", "site", "when", "by", "state", "last crawl",
        "next crawl",
    )  # fmt: skip
    for schedule in schedules:
        table.add_row(
            str(schedule.id),
            schedule.case,
            str(schedule.authorisation_id),
            schedule.site,
            schedule.timing.describe(),
            schedule.created_by,
            _state(schedule),
            _last(schedule),
            _when(schedule.next_run_at) if schedule.state == "active" else "—",
        )
    context.console.print(table)
    if not schedules:
        context.console.print("no schedules")
    elif any(s.state == "active" and s.next_run_at is None for s in schedules):
        context.console.print(
            "no next crawl: the scheduler has not taken it up; is `adwatch serve` running?"
        )


@app.command("pause")
def pause(
    ctx: typer.Context,
    schedule_id: int = typer.Argument(..., metavar="ID"),
    reason: str | None = typer.Option(None, help="Why (written to the audit log)."),
) -> None:
    """Stop firing until resumed (investigators of the case, legal officers)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        pause_schedule(session, access, schedule_id, reason)
    context.console.print(f"schedule {schedule_id} paused")


@app.command("resume")
def resume(ctx: typer.Context, schedule_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Fire again, if the authorisation still allows it (investigators of the case)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        resume_schedule(
            session,
            access,
            schedule_id,
            site_profiles_dir=context.settings.resolved_site_profiles_dir,
        )
    context.console.print(f"schedule {schedule_id} resumed")


@app.command("remove")
def remove(
    ctx: typer.Context,
    schedule_id: int = typer.Argument(..., metavar="ID"),
    reason: str | None = typer.Option(None, help="Why (written to the audit log)."),
) -> None:
    """Delete a schedule; the audit log keeps its history (investigators of the case, legal
    officers)."""
    context: AppContext = ctx.obj
    access = context.access()
    with context.session_factory.begin() as session:
        remove_schedule(session, access, schedule_id, reason)
    context.console.print(f"schedule {schedule_id} removed")


def _state(schedule: ScheduleSummary) -> str:
    if schedule.state == "stopped":
        return f"stopped: {schedule.stop_reason}"
    if schedule.ends_at_next_firing:
        return f"active; stops at its next firing: {schedule.ends_at_next_firing}"
    return schedule.state


def _last(schedule: ScheduleSummary) -> str:
    if schedule.last_fired_at is None:
        return "—"
    when = f"{schedule.last_fired_at:%Y-%m-%d %H:%M}"
    if schedule.last_problem:
        return f"{when}: {schedule.last_problem}"
    if schedule.last_run_status is not None:
        return f"{when}: run {schedule.last_run_id} {schedule.last_run_status}"
    return f"{when}: crawling (no run recorded yet)"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "—"

"""``adwatch serve``: the scheduler in the foreground (the web UI will join it here)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from datetime import time as clock_time

import typer

from adwatch.cli.app_context import AppContext
from adwatch.cli.errors import EXIT_DATABASE, EXIT_INTERRUPTED, EXIT_REFUSED
from adwatch.services.scheduling import (
    DEFAULT_PURGE_TIME,
    SchedulerAlreadyRunning,
    SchedulerRunner,
)


def serve_command(
    ctx: typer.Context,
    purge_at: str = typer.Option(
        f"{DEFAULT_PURGE_TIME:%H:%M}",
        "--purge-at",
        metavar="HH:MM",
        help="When the daily purge runs (UTC).",
    ),
    stop_after: float | None = typer.Option(
        None,
        "--stop-after",
        metavar="SECONDS",
        min=0,
        help="Stop by itself after this many seconds (tests, maintenance windows).",
    ),
) -> None:
    """Run the scheduler: scheduled crawls and the daily purge, until Ctrl-C.

    Exactly one scheduler runs per database; a second `adwatch serve` is refused (exit 2).
    Each firing is printed as it happens (no ad content).
    """
    context: AppContext = ctx.obj
    console = context.console

    def emit(message: str) -> None:
        console.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}", highlight=False)

    runner = SchedulerRunner(
        context.settings, context.session_factory, emit=emit, purge_at=_clock_time(purge_at)
    )
    try:
        runner.start()
    except SchedulerAlreadyRunning as exc:
        context.error_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    deadline = None if stop_after is None else time.monotonic() + stop_after
    idle = threading.Event()
    try:
        while runner.failure is None and (deadline is None or time.monotonic() < deadline):
            idle.wait(0.2)
    except KeyboardInterrupt:
        _stop_after_interrupt(context, runner)
        return
    runner.stop()
    if runner.failure is not None:
        context.error_console.print(f"[bold red]error:[/bold red] {runner.failure}")
        raise typer.Exit(EXIT_DATABASE)
    emit("scheduler stopped")


def _stop_after_interrupt(context: AppContext, runner: SchedulerRunner) -> None:
    """First Ctrl-C: no new firings, wait for running ones. Second: leave at once (running
    crawl workers finish their runs on their own; the lock goes with the process)."""
    context.console.print("stopping: waiting for running crawls to end (Ctrl-C again to leave now)")
    try:
        runner.stop()
    except KeyboardInterrupt:
        context.error_console.print("left running crawls to finish on their own")
        os._exit(EXIT_INTERRUPTED)
    context.console.print("scheduler stopped")


def _clock_time(value: str) -> clock_time:
    try:
        parsed = clock_time.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time of day (HH:MM)", param_hint="--purge-at"
        ) from None
    return parsed.replace(second=0, microsecond=0)

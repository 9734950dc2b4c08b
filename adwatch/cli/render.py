"""Rich rendering shared by commands."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adwatch.services.crawling import CrawlAndLinkOutcome
from adwatch.services.profiles import ProfileSummary
from crawler.run_control import ProgressCallback


@contextmanager
def crawl_progress(console: Console, site_key: str) -> Iterator[ProgressCallback]:
    """A progress bar fed by the crawl worker's events (pages against the page limit)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} pages"),
        TextColumn("· {task.fields[ads]} ads"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(f"crawling {site_key}", total=None, ads=0)

        def on_progress(event: dict[str, Any]) -> None:
            if event.get("event") == "finished":
                pages = int(event.get("pages", 0))
                progress.update(task, total=pages, completed=pages)
                return
            progress.update(
                task,
                completed=int(event.get("pages", 0)),
                total=int(event.get("max_pages", 0)) or None,
                ads=int(event.get("ads", 0)),
            )

        yield on_progress


def print_crawl_summary(console: Console, outcome: CrawlAndLinkOutcome) -> None:
    """The run summary, problems included, and what linking did."""
    run = outcome.run
    colour = "green" if run.status == "finished" else "red"
    table = Table(
        title=f"crawl run {run.run_id}: [{colour}]{run.status}[/{colour}]", show_header=False
    )
    for label, value in (
        ("pages fetched", run.pages_fetched),
        ("ads captured", run.ads_captured),
        ("ads unchanged since last capture", run.ads_unchanged),
        ("images stored", run.images_stored),
        ("requests refused (allowlist / passive-only)", run.requests_refused),
        ("ads linked into profiles", outcome.linking.ads_linked),
        (
            "profiles created / grown / merged",
            f"{outcome.linking.profiles_created} / {outcome.linking.profiles_grown} / "
            f"{outcome.linking.profiles_merged}",
        ),
        ("log", run.log_file),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if run.problems:
        problems = Table(
            "kind", "url", "what happened", title=f"{len(run.problems)} problems (the run went on)"
        )
        for problem in run.problems:
            problems.add_row(problem["kind"], problem["url"], problem["message"])
        console.print(problems)


def print_profiles(console: Console, profiles: Sequence[ProfileSummary]) -> None:
    """The profile list as a table."""
    table = Table("profile", "ads", "phones", "cities", "first seen", "last seen", "category")
    for p in profiles:
        table.add_row(
            str(p.profile_id),
            str(p.ad_count),
            "\n".join(p.phones) or "—",
            ", ".join(p.cities) or "—",
            f"{p.first_seen:%Y-%m-%d %H:%M}" if p.first_seen else "—",
            f"{p.last_seen:%Y-%m-%d %H:%M}" if p.last_seen else "—",
            p.subject_category.replace("_", " "),
        )
    console.print(table)
    if not profiles:
        console.print("no candidate profiles match")

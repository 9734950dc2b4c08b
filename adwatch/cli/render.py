"""Rich rendering shared by commands."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, tzinfo
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adwatch.services.crawling import CrawlAndLinkOutcome
from adwatch.services.offline_match import OfflineMatchOutcome
from adwatch.services.profiles import ProfileDetail, ProfileSummary
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
    colour = {"finished": "green", "stopped": "yellow"}.get(run.status, "red")
    status = f"{run.status}: {run.stop_reason}" if run.stop_reason else run.status
    table = Table(title=f"crawl run {run.run_id}: [{colour}]{status}[/{colour}]", show_header=False)
    for label, value in (
        ("pages fetched", run.pages_fetched),
        ("ads captured", run.ads_captured),
        ("ads below the indicator threshold (not kept)", run.ads_below_threshold),
        ("ads unchanged since last capture", run.ads_unchanged),
        ("images stored", run.images_stored),
        ("requests refused (allowlist / passive-only)", run.requests_refused),
        ("ads linked into profiles", outcome.linking.ads_linked),
        (
            "profiles created / grown / merged / split",
            f"{outcome.linking.profiles_created} / {outcome.linking.profiles_grown} / "
            f"{outcome.linking.profiles_merged} / {outcome.linking.profiles_split}",
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
    monitor = outcome.monitor
    if monitor.crossed:
        state = "crawls are paused until" if monitor.paused else "a legal officer should make"
        console.print(
            f"[bold yellow]systematic-collection monitor:[/bold yellow] thresholds crossed "
            f"since the last review ({', '.join(monitor.crossed)}); {state} a review "
            "(adwatch authorisation show / review)"
        )


def print_profiles(console: Console, profiles: Sequence[ProfileSummary]) -> None:
    """The profile list as a table."""
    table = Table(
        "profile",
        "case",
        "ads",
        "phones",
        "cities",
        "first seen",
        "last seen",
        "category*",
        "score*",
    )
    for p in profiles:
        table.add_row(
            str(p.profile_id),
            ", ".join(p.cases),
            str(p.ad_count),
            "\n".join(p.phones) or "—",
            ", ".join(p.cities) or "—",
            f"{p.first_seen:%Y-%m-%d %H:%M}" if p.first_seen else "—",
            f"{p.last_seen:%Y-%m-%d %H:%M}" if p.last_seen else "—",
            p.subject_category.replace("_", " "),
            f"{p.indicator_score:.1f}" if p.indicator_score is not None else "—",
        )
    console.print(table)
    if not profiles:
        console.print("no candidate profiles match")
    else:
        console.print(
            "* assessments, not facts: the data-subject category is an analyst's, the "
            "indicator score the indicator model's"
        )


def print_profile_detail(
    console: Console, detail: ProfileDetail, *, why: bool, zone: tzinfo = UTC
) -> None:
    """One profile: its assessment, movement timeline, history and (with ``why``) evidence;
    times are shown in ``zone`` (``ADWATCH_TIMEZONE``), which the headings name."""
    zone_name = str(zone)
    header = f"candidate profile {detail.profile_id}"
    if detail.merged_into is not None:
        header += f" (merged into profile {detail.merged_into})"
    console.print(
        f"[bold]{header}[/bold] · case {', '.join(detail.cases)} · data-subject category "
        f"(an assessment): {detail.subject_category.replace('_', ' ')}"
    )
    for change in detail.category_history:
        console.print(
            f"  {change.at.astimezone(zone):%Y-%m-%d %H:%M} {change.by}: "
            f"{change.previous.replace('_', ' ')} → "
            f"{change.category.replace('_', ' ')} — {change.reason}",
            highlight=False,
        )
    console.print(f"phones: {', '.join(detail.phones) or '—'}")
    if detail.ads_in_other_cases:
        console.print(
            f"[yellow]{detail.ads_in_other_cases} more ads of this profile belong to combined "
            "cases you are not a member of; they are not shown[/yellow]"
        )
    assessment = detail.indicator_assessment
    if detail.indicator_score is not None and assessment:
        verdict = "over" if assessment.get("over_threshold") else "under"
        console.print(
            f"indicator score {detail.indicator_score:.1f} ({verdict} the threshold of "
            f"{assessment.get('threshold')}, model {detail.indicator_model_version}): "
            "an assessment, not a fact",
            highlight=False,
        )
        for fired in assessment.get("fired", []):
            console.print(
                f"  · {fired.get('description')} — {fired.get('evidence')}", highlight=False
            )
        if assessment.get("note"):
            console.print(f"  note: {assessment['note']}", highlight=False)
    timeline = Table(
        f"when ({zone_name})", "city", "site", "ad", "title", title="movement timeline"
    )
    for appearance in detail.timeline:
        timeline.add_row(
            f"{appearance.seen_at.astimezone(zone):%Y-%m-%d %H:%M}" if appearance.seen_at else "—",
            appearance.city or "—",
            appearance.site,
            str(appearance.ad_id),
            appearance.title if appearance.title is not None else "(not kept)",
        )
    console.print(timeline)
    if why and detail.bridges:
        console.print("[bold]what joins ads that share no number[/bold]")
        for bridge in detail.bridges:
            console.print(f"  · {bridge}", highlight=False)
    if why:
        console.print("[bold]why each ad is in this profile[/bold]")
        for appearance in detail.timeline:
            console.print(
                f"ad {appearance.ad_id} ({appearance.url}) · case {appearance.case}, "
                f"{appearance.authorisation} · phones: {', '.join(appearance.phones) or '—'}",
                highlight=False,
            )
            reasons = appearance.reasons or (
                "the first ad of this profile; nothing else links it yet",
            )
            for reason in reasons:
                console.print(f"  · {reason}", highlight=False)
    if detail.events:
        history = Table(f"when ({zone_name})", "event", "reason", title="history")
        for at, kind, reason in detail.events:
            history.add_row(f"{at.astimezone(zone):%Y-%m-%d %H:%M}", kind, reason)
        console.print(history)


def print_match_summary(console: Console, outcome: OfflineMatchOutcome, output: str) -> None:
    """What ``adwatch match`` did, bad lines included."""
    table = Table(title="offline match", show_header=False)
    for label, value in (
        ("lines read", outcome.lines_read),
        ("ads linked", outcome.ads_linked),
        ("lines skipped", len(outcome.problems)),
        ("images hashed", outcome.images_hashed),
        ("posted_at without a zone", f"{outcome.naive_times} (read as {outcome.timezone} time)"),
        ("profiles (2+ ads)", f"{outcome.profiles} ({outcome.multi_ad_profiles})"),
        ("time", f"{outcome.seconds:.2f} s ({outcome.ads_per_second:.0f} ads/s)"),
        ("output", output),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if outcome.problems:
        problems = Table("line", "ad", "why it was skipped", title="skipped lines")
        for problem in outcome.problems:
            problems.add_row(str(problem.line), problem.ad_id or "—", problem.message)
        console.print(problems)

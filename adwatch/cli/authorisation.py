"""``adwatch authorisation``: legal officers register, amend, review and revoke
authorisations; investigators and analysts see those of their cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from crawler.site_profile import get_site_profile
from legal_policy.authorisation import stop_reason
from legal_policy.authorisation_store import (
    NewAuthorisation,
    amend_site,
    list_authorisations,
    register_authorisation,
    review_collection,
    revoke_authorisation,
    terms_of,
    visible_authorisation,
)
from legal_policy.errors import InvalidAuthorisation
from legal_policy.monitor import FIGURES, monitor_status

app = typer.Typer(help="Authorisations: the legal basis of every crawl.", no_args_is_help=True)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAuthorisation(
            f"{option}: {value!r} is not an ISO 8601 date or time (e.g. 2026-12-01T00:00+01:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("add")
def add(
    ctx: typer.Context,
    case_number: str = typer.Option(..., "--case", help="A registered case (adwatch case list)."),
    legal_basis: str = typer.Option(..., help="Code from the legal-basis catalogue, e.g. wpg-9."),
    order_reference: str = typer.Option(..., "--order-ref", help="Prosecutor's order reference."),
    officer: str = typer.Option(..., help="Responsible officer named in the order."),
    dpia_reference: str = typer.Option(..., "--dpia", help="DPIA this processing relies on."),
    sites: list[str] = typer.Option(..., "--site", help="Site profile key; repeat per site."),
    purpose: str = typer.Option("criminal_investigation", help="Only criminal_investigation."),
    valid_from: str | None = typer.Option(
        None, help="Start (ISO 8601; without a zone: UTC); default now."
    ),
    valid_until: str | None = typer.Option(
        None, help="End (ISO 8601; without a zone: UTC); default --days after the start."
    ),
    days: int = typer.Option(30, min=1, help="Validity in days when --valid-until is absent."),
    max_pages_per_run: int = typer.Option(500, min=1, help="Page budget of one crawl run."),
    max_runs_per_day: int = typer.Option(4, min=1, help="Crawl runs allowed per day."),
    indicator_threshold: float | None = typer.Option(
        None,
        help="Keep only ads the ad-level indicator model scores at least this high "
        "(default: the model's own threshold); 0 keeps every ad of the sites.",
    ),
) -> None:
    """Register an authorisation (legal officers).

    Each site is pinned to its profile as it reads now: its SHA-256 and the origins it
    allows.
    """
    context: AppContext = ctx.obj
    access = context.access()
    start = _parse_time(valid_from, "--valid-from") or datetime.now(UTC)
    end = _parse_time(valid_until, "--valid-until") or start + timedelta(days=days)
    refs = tuple(
        get_site_profile(key, context.settings.resolved_site_profiles_dir).site_ref()
        for key in sites
    )
    new = NewAuthorisation(
        case_number=case_number,
        legal_basis=legal_basis,
        order_reference=order_reference,
        purpose=purpose,
        officer=officer,
        dpia_reference=dpia_reference,
        valid_from=start,
        valid_until=end,
        sites=refs,
        max_pages_per_run=max_pages_per_run,
        max_runs_per_day=max_runs_per_day,
        indicator_threshold=indicator_threshold,
    )
    catalogue = context.catalogue()
    with context.session_factory.begin() as session:
        row = register_authorisation(session, access, new, catalogue)
        authorisation_id = row.id
    context.console.print(
        f"registered authorisation [bold]{authorisation_id}[/bold] for case {case_number} "
        f"({legal_basis}), valid {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC, "
        f"sites: {', '.join(sorted(r.key for r in refs))}"
    )
    for ref in refs:
        context.console.print(
            f"  {ref.key}: profile SHA-256 {ref.profile_sha256}, origins "
            f"{', '.join(sorted(ref.allowed_origins))}",
            highlight=False,
        )


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Authorisations you may see, and whether each allows crawling now."""
    context: AppContext = ctx.obj
    access = context.access()
    now = datetime.now(UTC)
    table = Table("id", "case", "basis", "order", "valid from", "valid until", "sites", "state")
    with context.session_factory() as session:
        for row in list_authorisations(session, access):
            terms = terms_of(row)
            reason = stop_reason(terms, now)
            if reason is None:
                state = "not yet valid" if now < row.valid_from else "[green]valid[/green]"
            else:
                state = f"[red]{reason}[/red]"
            table.add_row(
                str(row.id),
                row.case_number,
                row.legal_basis,
                row.order_reference,
                f"{row.valid_from:%Y-%m-%d %H:%M}",
                f"{row.valid_until:%Y-%m-%d %H:%M}",
                ", ".join(sorted(terms.site_keys)),
                state,
            )
    context.console.print(table)


@app.command("show")
def show(ctx: typer.Context, authorisation_id: int = typer.Argument(...)) -> None:
    """One authorisation in full, with its site pins and the systematic-collection monitor."""
    context: AppContext = ctx.obj
    access = context.access()
    catalogue = context.catalogue()
    now = datetime.now(UTC)
    with context.session_factory() as session:
        row = visible_authorisation(session, access, authorisation_id)
        status = monitor_status(session, row, catalogue.monitor, now)
        table = Table(show_header=False)
        for label, value in (
            ("id", row.id),
            ("case number", row.case_number),
            ("legal basis", row.legal_basis),
            ("order reference", row.order_reference),
            ("purpose", row.purpose),
            ("officer", row.officer),
            ("DPIA reference", row.dpia_reference),
            ("valid from", row.valid_from.isoformat()),
            ("valid until", row.valid_until.isoformat()),
            ("max pages per run", row.max_pages_per_run),
            ("max runs per day", row.max_runs_per_day),
            (
                "indicator threshold",
                "the model's own" if row.indicator_threshold is None else row.indicator_threshold,
            ),
            ("registered", f"{row.registered_at.isoformat()} by {row.registered_by}"),
            (
                "revoked",
                f"{row.revoked_at.isoformat()} by {row.revoked_by}" if row.revoked_at else "no",
            ),
            ("state", stop_reason(terms_of(row), now) or "allows crawling"),
        ):
            table.add_row(label, str(value))
        for pin in row.site_pins:
            table.add_row(
                f"site {pin.site.key}",
                f"profile SHA-256 {pin.profile_sha256}\norigins "
                f"{', '.join(pin.allowed_origins)}\nreviewed {pin.reviewed_at:%Y-%m-%d %H:%M} "
                f"by {pin.reviewed_by}",
            )
        reviewed = (
            f"{row.monitor_reviewed_at:%Y-%m-%d %H:%M} by {row.monitor_reviewed_by}"
            if row.monitor_reviewed_at
            else "never"
        )
    context.console.print(table)
    monitor = Table(
        "figure", "now", "since last review", "threshold", title="systematic-collection monitor"
    )
    for name in FIGURES:
        crossed = name in status.crossed
        monitor.add_row(
            name.replace("_", " "),
            str(status.figures[name]),
            f"[bold red]{status.growth(name)}[/bold red]" if crossed else str(status.growth(name)),
            str(status.thresholds[name]),
        )
    context.console.print(monitor)
    context.console.print(f"last review: {reviewed}")
    if status.crossed:
        context.console.print(
            f"[bold yellow]warning:[/bold yellow] thresholds crossed since the last review: "
            f"{', '.join(status.crossed)}; review with `adwatch authorisation review "
            f"{authorisation_id} --reason …`"
            + (" (crawls are paused until then)" if status.paused else "")
        )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    authorisation_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why it is revoked (written to the audit log)."),
) -> None:
    """Revoke an authorisation from now on; a crawl running under it stops within seconds."""
    context: AppContext = ctx.obj
    access = context.access()
    catalogue = context.catalogue()
    with context.session_factory.begin() as session:
        revoke_authorisation(session, access, authorisation_id, reason, catalogue)
    context.console.print(f"authorisation {authorisation_id} revoked")


@app.command("amend")
def amend(
    ctx: typer.Context,
    authorisation_id: int = typer.Argument(...),
    site: str = typer.Option(..., "--site", help="Site profile key to review as it reads now."),
    reason: str = typer.Option(..., help="What was reviewed (written to the audit log)."),
) -> None:
    """Record a legal officer's review of a site profile as it is now.

    Pins its hash and origins (e.g. after the site moved); adds the site when the
    authorisation did not name it.
    """
    context: AppContext = ctx.obj
    access = context.access()
    ref = get_site_profile(site, context.settings.resolved_site_profiles_dir).site_ref()
    with context.session_factory.begin() as session:
        old, new = amend_site(session, access, authorisation_id, ref, reason)
    before = (
        f"was {old.profile_sha256[:12]}… ({', '.join(sorted(old.allowed_origins))})"
        if old
        else "newly added"
    )
    context.console.print(
        f"authorisation {authorisation_id}: site {site} now pinned to "
        f"{new.profile_sha256[:12]}… ({', '.join(sorted(new.allowed_origins))}); {before}",
        highlight=False,
    )


@app.command("review")
def review(
    ctx: typer.Context,
    authorisation_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="The outcome of the review (audited)."),
) -> None:
    """Review the systematic-collection monitor: thresholds count from now; a pause ends."""
    context: AppContext = ctx.obj
    access = context.access()
    catalogue = context.catalogue()
    with context.session_factory.begin() as session:
        status = review_collection(
            session, access, authorisation_id, reason, catalogue.monitor, datetime.now(UTC)
        )
    figures = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in status.figures.items())
    context.console.print(f"authorisation {authorisation_id} reviewed at {figures}")

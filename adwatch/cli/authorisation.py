"""``adwatch authorisation``: legal officers register, list, show and revoke authorisations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from rich.table import Table
from sqlalchemy import select

from adwatch.cli.app_context import AppContext
from crawler.site_profile import get_site_profile
from legal_policy.authorisation_store import (
    NewAuthorisation,
    SiteRef,
    get_authorisation,
    register_authorisation,
    revoke_authorisation,
)
from legal_policy.catalogue import load_catalogue
from legal_policy.errors import InvalidAuthorisation
from storage.models import Authorisation

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
    case_number: str = typer.Option(..., "--case", help="Case number of the investigation."),
    legal_basis: str = typer.Option(..., help="Code from the legal-basis catalogue, e.g. wpg-9."),
    order_reference: str = typer.Option(..., "--order-ref", help="Prosecutor's order reference."),
    officer: str = typer.Option(..., help="Responsible officer."),
    dpia_reference: str = typer.Option(..., "--dpia", help="DPIA this processing relies on."),
    sites: list[str] = typer.Option(..., "--site", help="Site profile key; repeat per site."),
    purpose: str = typer.Option("criminal_investigation", help="Only criminal_investigation."),
    valid_from: str | None = typer.Option(None, help="Start (ISO 8601); default now."),
    valid_until: str | None = typer.Option(None, help="End (ISO 8601); default --days after."),
    days: int = typer.Option(30, min=1, help="Validity in days when --valid-until is absent."),
    max_pages_per_run: int = typer.Option(500, min=1, help="Page budget of one crawl run."),
    max_runs_per_day: int = typer.Option(4, min=1, help="Crawl runs allowed per day."),
) -> None:
    """Register an authorisation; it is audited, and crawls may only run under one."""
    context: AppContext = ctx.obj
    start = _parse_time(valid_from, "--valid-from") or datetime.now(UTC)
    end = _parse_time(valid_until, "--valid-until") or start + timedelta(days=days)
    refs = []
    for key in sites:
        profile = get_site_profile(key, context.settings.resolved_site_profiles_dir)
        refs.append(
            SiteRef(profile.key, profile.config.name, profile.config.base_url, profile.sha256)
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
        sites=tuple(refs),
        max_pages_per_run=max_pages_per_run,
        max_runs_per_day=max_runs_per_day,
    )
    with context.session_factory.begin() as session:
        row = register_authorisation(session, new, context.settings.operator, load_catalogue())
        authorisation_id = row.id
    context.console.print(
        f"registered authorisation [bold]{authorisation_id}[/bold] for case {case_number} "
        f"({legal_basis}), valid {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC, "
        f"sites: {', '.join(sorted(r.key for r in refs))}"
    )


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List authorisations and whether each is valid now."""
    context: AppContext = ctx.obj
    now = datetime.now(UTC)
    table = Table("id", "case", "basis", "order", "valid from", "valid until", "sites", "state")
    with context.session_factory() as session:
        for row in session.scalars(select(Authorisation).order_by(Authorisation.id)):
            if row.revoked_at is not None:
                state = "[red]revoked[/red]"
            elif now < row.valid_from:
                state = "not yet valid"
            elif now >= row.valid_until:
                state = "[yellow]expired[/yellow]"
            else:
                state = "[green]valid[/green]"
            table.add_row(
                str(row.id),
                row.case_number,
                row.legal_basis,
                row.order_reference,
                f"{row.valid_from:%Y-%m-%d %H:%M}",
                f"{row.valid_until:%Y-%m-%d %H:%M}",
                ", ".join(sorted(s.key for s in row.sites)),
                state,
            )
    context.console.print(table)


@app.command("show")
def show(ctx: typer.Context, authorisation_id: int = typer.Argument(...)) -> None:
    """Show one authorisation in full."""
    context: AppContext = ctx.obj
    with context.session_factory() as session:
        row = get_authorisation(session, authorisation_id)
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
            ("sites", ", ".join(sorted(s.key for s in row.sites))),
            ("max pages per run", row.max_pages_per_run),
            ("max runs per day", row.max_runs_per_day),
            ("registered", f"{row.registered_at.isoformat()} by {row.registered_by}"),
            (
                "revoked",
                f"{row.revoked_at.isoformat()} by {row.revoked_by}" if row.revoked_at else "no",
            ),
        ):
            table.add_row(label, str(value))
    context.console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    authorisation_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why it is revoked (written to the audit log)."),
) -> None:
    """Revoke an authorisation from now on."""
    context: AppContext = ctx.obj
    with context.session_factory.begin() as session:
        revoke_authorisation(session, authorisation_id, context.settings.operator, reason)
    context.console.print(f"authorisation {authorisation_id} revoked")

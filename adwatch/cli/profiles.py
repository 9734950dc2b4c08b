"""``adwatch profiles``: analysts consult candidate profiles (every read is audited)."""

from __future__ import annotations

import typer

from adwatch.cli.app_context import AppContext
from adwatch.cli.render import print_profile_detail, print_profiles
from adwatch.services.profiles import list_profiles, show_profile
from legal_policy.access import AccessContext

app = typer.Typer(help="Candidate profiles: ads linked by shared evidence.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    justification: str = typer.Option(
        ..., "--justification", "-j", help="Why you consult (written to the audit log)."
    ),
    min_ads: int = typer.Option(1, min=1, help="Only profiles with at least this many ads."),
    limit: int = typer.Option(100, min=1, help="At most this many profiles."),
    rank: str = typer.Option(
        "ads", "--rank", help="Order: 'ads' (largest first) or 'score' (indicator score)."
    ),
) -> None:
    """List candidate profiles: ads, phones, cities, first and last seen, indicator score."""
    if rank not in ("ads", "score"):
        raise typer.BadParameter("must be 'ads' or 'score'", param_hint="--rank")
    context: AppContext = ctx.obj
    access = AccessContext(context.settings.operator, justification)
    with context.session_factory.begin() as session:
        profiles = list_profiles(session, access, min_ads=min_ads, limit=limit, rank_by=rank)
    print_profiles(context.console, profiles)


@app.command("show")
def show(
    ctx: typer.Context,
    profile_id: int = typer.Argument(..., help="The profile's id (see `adwatch profiles list`)."),
    justification: str = typer.Option(
        ..., "--justification", "-j", help="Why you consult (written to the audit log)."
    ),
    why: bool = typer.Option(False, "--why", help="Explain, per ad, the evidence that links it."),
) -> None:
    """One profile: assessment, movement timeline (time, city, site), history; --why explains."""
    context: AppContext = ctx.obj
    access = AccessContext(context.settings.operator, justification)
    with context.session_factory.begin() as session:
        detail = show_profile(session, access, profile_id)
    print_profile_detail(context.console, detail, why=why)

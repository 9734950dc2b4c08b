"""``adwatch profiles``: analysts consult candidate profiles (every read is audited)."""

from __future__ import annotations

import typer

from adwatch.cli.app_context import AppContext
from adwatch.cli.render import print_profiles
from adwatch.services.profiles import list_profiles
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
) -> None:
    """List candidate profiles, largest first: ads, phones, cities, first and last seen."""
    context: AppContext = ctx.obj
    access = AccessContext(context.settings.operator, justification)
    with context.session_factory.begin() as session:
        profiles = list_profiles(session, access, min_ads=min_ads, limit=limit)
    print_profiles(context.console, profiles)

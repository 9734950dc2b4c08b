"""``adwatch demo-site`` and ``adwatch demo``: the synthetic demo, end to end on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from adwatch.cli.app_context import AppContext
from adwatch.cli.render import (
    crawl_progress,
    print_crawl_summary,
    print_profile_detail,
    print_profiles,
)
from adwatch.demo.site import running_demo_site, serve_demo_site
from adwatch.services.crawling import crawl_and_link
from adwatch.services.demo import point_demo_profile_at
from adwatch.services.profiles import list_profiles, show_profile
from crawler.site_profile import get_site_profile
from legal_policy.access import AccessContext
from legal_policy.authorisation_store import NewAuthorisation, SiteRef, register_authorisation
from legal_policy.catalogue import load_catalogue
from storage.db import upgrade_database


def demo_site_command(
    host: str = typer.Option("127.0.0.1", help="Loopback address to serve on."),
    port: int = typer.Option(8765, min=0, max=65535, help="Port (the bundled profile uses 8765)."),
    seed: int = typer.Option(7, help="Seed of the synthetic content."),
    ads: int = typer.Option(40, min=1, max=5000, help="Number of synthetic ads."),
    faults: bool = typer.Option(False, help="Add a malformed page, a bad image and an HTTP 500."),
) -> None:
    """Serve the synthetic demo ad site on loopback until Ctrl-C."""
    typer.echo(f"demo site on http://{host}:{port}/ (synthetic content; Ctrl-C stops)")
    serve_demo_site(host, port, seed=seed, n_ads=ads, faults=faults)


def demo_command(
    ctx: typer.Context,
    port: int = typer.Option(8765, min=0, max=65535, help="Port for the demo site (0: any)."),
    seed: int = typer.Option(7, help="Seed of the synthetic content."),
    ads: int = typer.Option(40, min=1, max=5000, help="Number of synthetic ads."),
) -> None:
    """Migrate, serve the demo site, register a demo authorisation, crawl, link, list profiles."""
    context: AppContext = ctx.obj
    settings = context.settings
    console = context.console
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_database_url)
    console.print(f"[bold]1.[/bold] database ready ({settings.resolved_database_url})")
    with running_demo_site(port=port, seed=seed, n_ads=ads) as base_url:
        console.print(f"[bold]2.[/bold] synthetic demo site serving at {base_url}")
        point_demo_profile_at(settings, base_url)
        profile = get_site_profile("demo", settings.resolved_site_profiles_dir)
        now = datetime.now(UTC)
        with context.session_factory.begin() as session:
            row = register_authorisation(
                session,
                NewAuthorisation(
                    case_number="DEMO-2026-001",
                    legal_basis="wpg-9",
                    order_reference="DEMO-ORDER (synthetic)",
                    purpose="criminal_investigation",
                    officer="demo legal officer",
                    dpia_reference="DEMO-DPIA",
                    valid_from=now - timedelta(minutes=1),
                    valid_until=now + timedelta(days=1),
                    sites=(
                        SiteRef(
                            profile.key,
                            profile.config.name,
                            profile.config.base_url,
                            profile.sha256,
                        ),
                    ),
                    max_pages_per_run=200,
                ),
                settings.operator,
                load_catalogue(),
            )
            authorisation_id = row.id
        console.print(f"[bold]3.[/bold] demo authorisation {authorisation_id} registered")
        with crawl_progress(console, "demo") as on_progress:
            outcome = crawl_and_link(
                settings,
                context.session_factory,
                authorisation_id=authorisation_id,
                site_key="demo",
                actor=settings.operator,
                on_progress=on_progress,
            )
    console.print("[bold]4.[/bold] crawled and linked")
    print_crawl_summary(console, outcome)
    with context.session_factory.begin() as session:
        profiles = list_profiles(
            session,
            AccessContext(settings.operator, "adwatch demo: show the demo's profiles"),
            min_ads=2,
        )
    console.print("[bold]5.[/bold] candidate profiles that join two or more ads:")
    print_profiles(console, profiles)
    if profiles:
        top = profiles[0].profile_id
        with context.session_factory.begin() as session:
            detail = show_profile(
                session,
                AccessContext(settings.operator, "adwatch demo: explain the largest profile"),
                top,
            )
        console.print(
            f"[bold]6.[/bold] why the ads of profile {top} belong together "
            f"(adwatch profiles show {top} --why -j REASON):"
        )
        print_profile_detail(console, detail, why=True)

"""``adwatch demo-site`` and ``adwatch demo``: the synthetic demo, end to end on loopback."""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from adwatch.services.demo import (
    DEMO_ADMIN,
    DEMO_CASE,
    DEMO_USERS,
    ensure_demo_registry,
    write_demo_profile,
)
from adwatch.services.profiles import ProfileSummary, list_profiles, show_profile
from crawler.site_profile import get_site_profile
from legal_policy.access import AccessContext
from legal_policy.authorisation_store import NewAuthorisation, register_authorisation
from storage.db import upgrade_database


def demo_site_command(
    host: str = typer.Option("127.0.0.1", help="Loopback address to serve on."),
    port: int = typer.Option(8765, min=0, max=65535, help="Port (the bundled profile uses 8765)."),
    seed: int = typer.Option(7, help="Seed of the synthetic content."),
    ads: int = typer.Option(40, min=1, max=5000, help="Number of synthetic ads."),
    faults: bool = typer.Option(False, help="Add a malformed page, a bad image and an HTTP 500."),
    style: str = typer.Option(
        "classic",
        help="classic (the demo profile's site), or jsonld (the demo-jsonld profile's site, "
        "which its profile expects on port 8766)",
    ),
) -> None:
    """Serve the synthetic demo ad site on loopback until Ctrl-C."""
    if style not in ("classic", "jsonld"):
        raise typer.BadParameter("must be classic or jsonld", param_hint="--style")
    typer.echo(f"demo site on http://{host}:{port}/ (synthetic content; Ctrl-C stops)")
    try:
        serve_demo_site(host, port, seed=seed, n_ads=ads, faults=faults, style=style)
    except OSError as exc:
        raise _port_problem(port, exc) from None


def _port_problem(port: int, error: OSError) -> typer.BadParameter:
    if error.errno == errno.EADDRINUSE:
        return typer.BadParameter(
            f"port {port} is busy; choose another, or 0 for any free port", param_hint="--port"
        )
    return typer.BadParameter(f"cannot serve on port {port}: {error.strerror}", param_hint="--port")


def demo_command(
    ctx: typer.Context,
    port: int = typer.Option(
        0, min=0, max=65535, help="Port for the demo site (default 0: any free port)."
    ),
    seed: int = typer.Option(7, help="Seed of the synthetic content."),
    ads: int = typer.Option(40, min=1, max=5000, help="Number of synthetic ads."),
) -> None:
    """Run the whole job on the synthetic demo site, as the four demo users.

    Migrates, registers the demo users and case DEMO-1, serves the demo site, then
    authorises (demo-legal), crawls and links (demo-investigator) and consults the
    profiles (demo-analyst).
    """
    context: AppContext = ctx.obj
    settings = context.settings
    console = context.console
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_migration_database_url)
    console.print(f"[bold]1.[/bold] database ready ({settings.resolved_database_url})")
    ensure_demo_registry(context.session_factory, context.via)
    console.print(
        f"[bold]2.[/bold] users {DEMO_ADMIN}, "
        + ", ".join(name for name, _ in DEMO_USERS)
        + f" and case {DEMO_CASE} registered"
    )
    # The demo's site profile lives in a temporary directory for the demo's own runs:
    # nothing is left behind that would send later crawls to a port nobody serves.
    with (
        tempfile.TemporaryDirectory(prefix="adwatch-demo-") as profiles,
        _demo_site(port, seed, ads) as base_url,
    ):
        console.print(f"[bold]3.[/bold] synthetic demo site serving at {base_url}")
        write_demo_profile(Path(profiles), base_url)
        config = settings.crawler_config(site_profiles_dir=Path(profiles))
        # The JavaScript-only ads need Chromium; without it the demo says so and goes on.
        sites = ["demo", "demo-js"] if config.chromium_path.exists() else ["demo"]
        if len(sites) == 1:
            console.print(
                f"[yellow]Chromium not found at {config.chromium_path}: the demo site's "
                "JavaScript-only ads are left out (apt-get install -y chromium)[/yellow]"
            )
        refs = tuple(get_site_profile(key, config.site_profiles_dir).site_ref() for key in sites)
        now = datetime.now(UTC)
        catalogue = context.catalogue()
        context.as_user = "demo-legal"
        legal = context.access()
        with context.session_factory.begin() as session:
            row = register_authorisation(
                session,
                legal,
                NewAuthorisation(
                    case_number=DEMO_CASE,
                    legal_basis="wpg-9",
                    order_reference="DEMO-ORDER (synthetic)",
                    purpose="criminal_investigation",
                    officer="demo legal officer",
                    dpia_reference="DEMO-DPIA",
                    valid_from=now - timedelta(minutes=1),
                    valid_until=now + timedelta(days=1),
                    sites=refs,
                    max_pages_per_run=200,
                ),
                catalogue,
            )
            authorisation_id = row.id
        console.print(
            f"[bold]4.[/bold] demo-legal registered authorisation {authorisation_id} "
            f"(case {DEMO_CASE}, wpg-9, sites "
            + ", ".join(f"{r.key} pinned to {r.profile_sha256[:12]}…" for r in refs)
            + ")"
        )
        context.as_user = "demo-investigator"
        investigator = context.access()
        outcomes = []
        for key in sites:
            with crawl_progress(console, key) as on_progress:
                outcomes.append(
                    crawl_and_link(
                        config,
                        context.session_factory,
                        investigator,
                        authorisation_id=authorisation_id,
                        site_key=key,
                        catalogue=catalogue,
                        on_progress=on_progress,
                    )
                )
    console.print(
        "[bold]5.[/bold] demo-investigator crawled "
        + " and ".join(sites)
        + " (JavaScript pages rendered in Chromium); the ads were linked in the case"
    )
    for outcome in outcomes:
        print_crawl_summary(console, outcome)
    context.as_user = "demo-analyst"
    analyst = context.access("adwatch demo: show the demo's profiles")
    with context.session_factory.begin() as session:
        profiles = list_profiles(session, analyst, case_number=DEMO_CASE, min_ads=2)
    console.print("[bold]6.[/bold] demo-analyst: candidate profiles that join two or more ads:")
    print_profiles(console, profiles)
    if profiles:
        top = profiles[0].profile_id
        with context.session_factory.begin() as session:
            detail = show_profile(
                session, analyst.justified("adwatch demo: explain the largest profile"), top
            )
        console.print(
            f"[bold]7.[/bold] why the ads of profile {top} belong together "
            f"(adwatch --as demo-analyst profiles show {top} --why -j REASON):"
        )
        print_profile_detail(console, detail, why=True, zone=context.settings.zone)
        examples = _one_example_of_each_kind(context, analyst, profiles)
        if examples:
            console.print(
                "[bold]8.[/bold] each kind of evidence, one example from the demo's profiles:"
            )
            for label, (ad_id, sentence) in examples.items():
                console.print(f"  · {label}: ad {ad_id} {sentence}", highlight=False)


# The kinds of evidence a newcomer should see, in the order shown.
_EXAMPLE_KINDS = {
    "phone": "a shared phone",
    "image": "a photo re-posted as a copy (resized, recompressed, mirrored or cropped)",
    "text": "distinctive text (the ad has a new number and a new photo)",
    "hub_phone": "a hub number that links nothing (a booking office)",
    "unconfirmed_image": "a photo match the second fingerprint did not confirm",
}


def _one_example_of_each_kind(
    context: AppContext, analyst: AccessContext, profiles: Sequence[ProfileSummary]
) -> dict[str, tuple[int, str]]:
    """For each kind of evidence in the demo's profiles, one ad and its sentence (for a
    photo, the copy furthest from its original)."""
    found: dict[str, tuple[int, int, str]] = {}
    with context.session_factory.begin() as session:
        for summary in profiles:
            detail = show_profile(
                session,
                analyst.justified("adwatch demo: find an example of each kind of evidence"),
                summary.profile_id,
            )
            for appearance in detail.timeline:
                for evidence in appearance.evidence:
                    kind = str(evidence.get("kind"))
                    rank = int(evidence.get("distance") or 0) if kind == "image" else 0
                    if kind in _EXAMPLE_KINDS and (kind not in found or rank > found[kind][0]):
                        found[kind] = (rank, appearance.ad_id, str(evidence["explanation"]))
    return {_EXAMPLE_KINDS[kind]: found[kind][1:] for kind in _EXAMPLE_KINDS if kind in found}


@contextmanager
def _demo_site(port: int, seed: int, ads: int) -> Iterator[str]:
    with ExitStack() as stack:
        try:
            base_url = stack.enter_context(running_demo_site(port=port, seed=seed, n_ads=ads))
        except OSError as exc:
            raise _port_problem(port, exc) from None
        yield base_url

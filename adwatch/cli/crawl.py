"""``adwatch crawl``: one crawl run under an authorisation, then linking."""

from __future__ import annotations

import typer

from adwatch.cli.app_context import AppContext
from adwatch.cli.errors import EXIT_INTERRUPTED
from adwatch.cli.render import crawl_progress, print_crawl_summary
from adwatch.services.crawling import crawl_and_link


def crawl_command(
    ctx: typer.Context,
    authorisation_id: int = typer.Option(..., "--authorisation", help="Authorisation id."),
    site: str = typer.Option(..., help="Site profile key; the authorisation must name it."),
    resume: int | None = typer.Option(
        None,
        "--resume",
        metavar="RUN",
        help="Continue a failed or interrupted run (nothing it stored is stored twice).",
    ),
) -> None:
    """Crawl an authorised site and link its ads into the case's profiles (investigators).

    Ads are minimised under the authorisation's legal basis before they are stored. Ctrl-C
    stops the run cleanly (status interrupted, exit code 130); `--resume RUN` continues it.
    """
    context: AppContext = ctx.obj
    access = context.access()
    catalogue = context.catalogue()
    with crawl_progress(context.console, site) as on_progress:
        outcome = crawl_and_link(
            context.settings.crawler_config(),
            context.session_factory,
            access,
            authorisation_id=authorisation_id,
            site_key=site,
            catalogue=catalogue,
            on_progress=on_progress,
            resume_run_id=resume,
        )
    print_crawl_summary(context.console, outcome)
    if outcome.run.status == "interrupted":
        context.console.print(
            f"run {outcome.run.run_id} interrupted; its stored ads are linked. Continue it "
            f"with: adwatch crawl --authorisation {authorisation_id} --site {site} "
            f"--resume {outcome.run.run_id}"
        )
        raise typer.Exit(EXIT_INTERRUPTED)

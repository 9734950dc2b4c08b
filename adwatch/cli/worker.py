"""``adwatch worker``: one more worker for a running crawl (distributed mode, Redis)."""

from __future__ import annotations

import typer

from adwatch.cli.app_context import AppContext
from adwatch.cli.render import crawl_progress
from crawler.run_control import join_run


def worker_command(
    ctx: typer.Context,
    run: int = typer.Option(..., "--run", metavar="RUN", help="The running crawl to join."),
) -> None:
    """Join a running crawl as one more worker (investigators of its case; needs Redis).

    The worker takes pages from the run's shared frontier in Redis (ADWATCH_REDIS_URL)
    until none are left. Any machine with the same database, blob store and Redis may run
    one.
    """
    context: AppContext = ctx.obj
    access = context.access()
    with crawl_progress(context.console, f"run {run}") as on_progress:
        outcome = join_run(
            context.settings.crawler_config(),
            context.session_factory,
            access,
            run,
            on_progress=on_progress,
        )
    context.console.print(
        f"worker done; run {outcome.run_id} is {outcome.status}: {outcome.pages_fetched} pages, "
        f"{outcome.ads_captured} ads so far (all workers)"
    )

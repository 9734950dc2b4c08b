"""``adwatch retention`` and ``adwatch purge``: legal officers keep data no longer than its
legal basis allows."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from adwatch.cli.app_context import AppContext
from adwatch.services.purge import run_purge
from legal_policy.catalogue import load_catalogue
from legal_policy.retention import retention_overview, set_retention
from storage.blobstore import BlobStore

app = typer.Typer(help="Retention periods per legal basis (legal officers).", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Every legal basis with its retention period, who set it and how much data it holds."""
    context: AppContext = ctx.obj
    access = context.access()
    catalogue = load_catalogue(context.settings.legal_catalogue)
    with context.session_factory() as session:
        rows = retention_overview(session, access, catalogue, datetime.now(UTC))
    table = Table(
        "legal basis", "days", "counted from", "legal max", "set by", "ads kept", "expired"
    )
    for row in rows:
        set_by = (
            f"{row.set_by} {row.set_at:%Y-%m-%d}: {row.reason}"
            if row.set_by and row.set_at
            else f"catalogue ({row.catalogue_days})"
        )
        table.add_row(
            row.legal_basis,
            str(row.days),
            row.counted_from.replace("_", " "),
            str(row.max_days),
            set_by,
            str(row.ads_kept),
            str(row.ads_expired),
        )
    context.console.print(table)
    if any(row.ads_expired for row in rows):
        context.console.print("expired data waits for `adwatch purge`")


@app.command("set")
def set_(
    ctx: typer.Context,
    legal_basis: str = typer.Argument(..., help="Code from the catalogue, e.g. wpg-9."),
    days: int = typer.Argument(..., help="Days to keep, within the catalogue's legal maximum."),
    # Optional here so that a change without a reason is refused (and audited) by the policy.
    reason: str | None = typer.Option(None, help="Why (required; written to the audit log)."),
) -> None:
    """Set the retention period of a legal basis; every ad under it gets its new expiry."""
    context: AppContext = ctx.obj
    access = context.access()
    catalogue = load_catalogue(context.settings.legal_catalogue)
    with context.session_factory.begin() as session:
        updated = set_retention(session, access, catalogue, legal_basis, days, reason)
    context.console.print(
        f"{legal_basis}: retention {days} days; expiry recomputed for {updated} ads"
    )


def purge_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    case: str | None = typer.Option(
        None, "--case", help="Close this case and delete everything of it (needs --reason)."
    ),
    reason: str | None = typer.Option(None, help="Why (required with --case; audited)."),
) -> None:
    """Delete what has outlived its legal basis, with a receipt (legal officers).

    Rows, images, profiles left empty, blobs no longer used and run logs go; the audit
    log gets a deletion receipt (counts and digests, never content).
    """
    context: AppContext = ctx.obj
    access = context.access()
    settings = context.settings
    outcome = run_purge(
        context.session_factory,
        access,
        context.catalogue(),
        blob_store=BlobStore(settings.blob_dir),
        log_dir=settings.log_dir,
        now=datetime.now(UTC),
        default_region=settings.default_phone_region,
        case_number=case,
        reason=reason,
        dry_run=dry_run,
        checkpoint_file=settings.resolved_audit_checkpoint_file,
        snapshots=context.link_snapshots(),
    )
    receipt = outcome.receipt
    what = f"case {receipt.case} (closed)" if receipt.case else "expired data"
    title = f"purge of {what}" + (" — dry run, nothing deleted" if dry_run else "")
    table = Table("deleted" if not dry_run else "would delete", "count", title=title)
    for name, count in receipt.counts.items():
        table.add_row(name.replace("_", " "), str(count))
    context.console.print(table)
    if dry_run:
        return
    context.console.print(
        f"receipt in the audit log (ads digest {receipt.ads_digest[:16]}…, blobs digest "
        f"{receipt.blobs_digest[:16]}…); files deleted: {outcome.files_deleted}"
        + (f", already gone: {outcome.files_missing}" if outcome.files_missing else "")
        + (f", stray files swept: {outcome.orphans_deleted}" if outcome.orphans_deleted else "")
    )
